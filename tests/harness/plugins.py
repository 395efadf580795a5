"""``plugin:*`` (run as root, like real Dokku) and ``help`` (facts: dokku-plugin-contract.md).

- ``plugin:install URL [--name NAME]``: ``git clone`` (a ``file://`` URL yields the committed
  HEAD only) into ``plugins/available/NAME`` (NAME: ``--name``, else the URL's basename without
  ``.git`` and ``dokku-``; a second positional is ignored), symlink in ``plugins/enabled``, apply
  what Dokku's own install triggers do to existing apps (``post-config-update APP set NO_VHOST``
  quietly, ``post-domains-update APP disable``, bind-all-interfaces on), run the ``install``
  trigger of every enabled plugin as root with no arguments, chown the plugin to dokku. A failing
  install trigger -> rc 1, the plugin stays cloned and enabled. ``plugin:install`` without a URL
  only runs the install triggers. Installing an existing name fails like the clone does (git's
  "already exists" on stderr, rc 1): use ``plugin:update`` or ``plugin:uninstall`` first.
- ``plugin:uninstall NAME``: ``uninstall NAME`` trigger of every enabled plugin, then removal.
- ``plugin:update NAME [COMMITTISH]``: ``git pull`` (or fetch + checkout) then the ``update``
  trigger of every enabled plugin.
- ``plugin:install-dependencies``: the ``dependencies`` trigger of every enabled plugin.
- The emulated dokku-postgres shows up in ``plugin:list`` / ``plugin:installed postgres``.
- ``help [--all]`` scans and runs like the ``help | ''`` case of Dokku 0.38.27's ``dokku`` script:
  ``find -L plugins/enabled -name commands`` (the WHOLE plugin tree, symlinks followed), each match
  run with ``help`` under ``set -eo pipefail``, so a directory named ``commands`` anywhere in a
  plugin (a venv's ``pip/_internal/commands``) makes ``dokku help`` exit 126 "Is a directory".
  plugin:install / update / uninstall / enable / disable end by priming the bash-completion cache
  with a nested ``dokku --quiet help --all`` (``plugin_prime_bash_completion`` in
  plugins/plugin/internal-functions), whose failure fails the plugin command with its exit code.
Messages follow dokku/dokku's plugin plugin (``Cloning plugin repo URL to PATH``, ``Plugin NAME
enabled``, ``Priming bash-completion cache``, ``Plugin does not exist``); no transcript exists.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

from . import state, triggers
from .output import DokkuExit, err, fail, info1, out, quiet
from .paths import BIN_DIR, chown_dokku, layout, plugin_env

VIRTUAL = {"postgres": ("1.48.0", "dokku postgres service plugin")}


def _name_from_url(url: str) -> str:
    base = url.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".git", ".tar.gz", ".tgz"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base[len("dokku-"):] if base.startswith("dokku-") else base


def _apply_core_install_effects() -> None:
    for app in state.list_apps():
        with state.edit_config(app) as cfg:
            cfg.setdefault("NO_VHOST", "1")
        triggers.fire("post-config-update", [app, "set", "NO_VHOST"], quiet=True, stop_on_error=False)
        triggers.fire("post-domains-update", [app, "disable"], stop_on_error=False)
        with state.edit_app(app) as data:
            data["network"]["bind_all_interfaces"] = True


def _fetch(url: str, dest: Path, committish: str | None) -> None:
    local = url[len("file://"):] if url.startswith("file://") else url
    if url.endswith((".tgz", ".tar.gz")):
        dest.mkdir(parents=True)
        with tarfile.open(local) as tar:
            tar.extractall(dest)
        return
    res = subprocess.run(["git", "clone", "--quiet", url, str(dest)], capture_output=True, text=True)
    if res.returncode != 0:
        err(res.stderr.rstrip())
        raise DokkuExit(1)
    if committish:
        subprocess.run(["git", "-C", str(dest), "checkout", "--quiet", committish], check=False)


def plugin_install(args):
    name = None
    pos = []
    i = 0
    while i < len(args):
        if args[i] == "--name":
            name = args[i + 1] if i + 1 < len(args) else None
            i += 2
            continue
        if args[i].startswith("--name="):
            name = args[i].split("=", 1)[1]
        elif args[i] == "--core":
            pass
        else:
            pos.append(args[i])
        i += 1
    lay = layout()
    if not pos:
        return triggers.fire("install", [])
    url = pos[0]
    name = name or _name_from_url(url)
    dest = lay.available / name
    if not quiet():
        info1(f"Cloning plugin repo {url} to {dest}")
    _fetch(url, dest, None)
    link = lay.enabled / name
    if not link.exists():
        link.symlink_to(Path("..") / "available" / name)
    if not quiet():
        info1(f"Plugin {name} enabled")
    _apply_core_install_effects()
    rc = triggers.fire("install", [])
    chown_dokku(dest)
    os.lchown(link, *_dokku_ids())
    if rc:
        raise DokkuExit(1)
    _prime_completion()
    return 0


def _prime_completion() -> None:
    """Dokku's ``plugin_prime_bash_completion`` (plugins/plugin/internal-functions), run at the
    end of plugin:install / update / uninstall / enable / disable: a nested
    ``dokku --quiet help --all``, its indented lines' first words sorted into
    /var/cache/dokku-completion. The subcommand runs under ``set -eo pipefail``, so a failing
    ``help --all`` fails the plugin command with help's exit code (126 when some ``commands``
    match is a directory), after the plugin was already installed/updated."""
    if not quiet():
        info1("Priming bash-completion cache")
    sys.stdout.flush()
    res = subprocess.run([str(BIN_DIR / "dokku"), "--quiet", "help", "--all"], stdout=subprocess.PIPE,
                         text=True, env=dict(os.environ))
    if res.returncode:
        raise DokkuExit(res.returncode)
    words = sorted(line.split()[0] for line in res.stdout.splitlines() if line.startswith("    ") and line.split())
    cache = layout().root / "var/cache/dokku-completion"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("".join(w + "\n" for w in words))


def _dokku_ids():
    import pwd
    pw = pwd.getpwnam("dokku")
    return pw.pw_uid, pw.pw_gid


def plugin_installed(args):
    if not args:
        fail("Please specify a plugin name")
    if args[0] in VIRTUAL or (layout().available / args[0]).exists():
        return 0
    raise DokkuExit(1)


def _meta(path: Path) -> tuple[str, str]:
    try:
        data = tomllib.loads((path / "plugin.toml").read_text())
        plugin = data.get("plugin", {})
        return str(plugin.get("version", "")), str(plugin.get("description", ""))
    except (FileNotFoundError, tomllib.TOMLDecodeError):
        return "", ""


def plugin_list(args):
    lay = layout()
    rows = [(n, v, "enabled", d) for n, (v, d) in VIRTUAL.items()]
    for p in sorted(lay.available.iterdir()):
        version, desc = _meta(p)
        rows.append((p.name, version, "enabled" if (lay.enabled / p.name).exists() else "disabled", desc))
    for name, version, status, desc in sorted(rows):
        out(f"  {name.ljust(28)} {version.ljust(8)} {status.ljust(9)}  {desc}")
    return 0


def plugin_uninstall(args):
    if not args:
        fail("Please specify a plugin to uninstall")
    name = args[0]
    lay = layout()
    if not (lay.available / name).exists():
        fail("Plugin does not exist")
    rc = triggers.fire("uninstall", [name])
    if rc:
        raise DokkuExit(1)
    link = lay.enabled / name
    if link.is_symlink() or link.exists():
        link.unlink()
    shutil.rmtree(lay.available / name)
    if not quiet():
        info1(f"Plugin {name} uninstalled")
    _prime_completion()
    return 0


def plugin_update(args):
    lay = layout()
    if args:
        dest = lay.available / args[0]
        if not dest.exists():
            fail(f"Plugin {args[0]} is not installed")
        info1(f"Updating {args[0]}")
        git = ["git", "-c", "safe.directory=*", "-C", str(dest)]  # the clone is dokku-owned
        if len(args) > 1:
            cmds = [[*git, "fetch", "--quiet", "origin"], [*git, "checkout", "--quiet", args[1]]]
        else:
            cmds = [[*git, "pull", "--quiet"]]
        for cmd in cmds:
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                out(res.stderr.rstrip())
                fail(f"Unable to update plugin {args[0]}")
        chown_dokku(dest)
    rc = triggers.fire("update", [])
    if rc:
        return 1
    _prime_completion()
    return 0


def plugin_install_dependencies(args):
    return 1 if triggers.fire("dependencies", []) else 0


def plugin_enable(args, enable=True):
    if not args:
        fail("Please specify a plugin name")
    lay = layout()
    link = lay.enabled / args[0]
    if enable and link.exists():
        fail("Plugin already enabled")
    if not enable and not link.exists():
        fail("Plugin already disabled")
    if not (lay.available / args[0]).exists():
        fail("Plugin does not exist")
    if enable:
        link.symlink_to(Path("..") / "available" / args[0])
    else:
        link.unlink()
    if not quiet():
        info1(f"Plugin {args[0]} {'enabled' if enable else 'disabled'}")
    _prime_completion()
    return 0


def plugin_trigger(args):
    if not args:
        fail("Please specify a trigger")
    return triggers.fire(args[0], args[1:])


# What the emulated core plugins' ``commands help`` print (the harness implements them itself, so
# core-plugins/available holds no ``commands`` files): one "    NAME, DESCRIPTION" line each.
# Real core plugins also print their "NAME:SUB <args>, ..." lines, which only `help --all` keeps.
BUILTIN_HELP = [
    ("apps", "Manage apps"), ("checks", "Manage zero-downtime settings"),
    ("config", "Manage global and app-specific config vars"),
    ("docker-options", "Manage docker options for an app"), ("domains", "Manage domains used by the proxy"),
    ("git", "Manage app deploys via git"), ("letsencrypt", "Manage the letsencrypt integration"),
    ("logs", "Output app logs"), ("network", "Manage network settings for an app"),
    ("nginx", "Manage the nginx proxy"), ("plugin", "Manage installed plugins"),
    ("ports", "Manage ports for an app"), ("ps", "List processes running in app containers"),
    ("resource", "Manage resource settings for an app"), ("run", "Run a one-off process inside a container"),
    ("storage", "Manage mounted volumes"), ("postgres", "Manage postgres services"),
]
# Line numbers of the `$..._plugin_command help` calls in Dokku 0.38.27's `dokku` script (core,
# community; --all, plain), which bash puts in its error message (the real host said
# "/usr/bin/dokku: line 263: ...: Is a directory").
_CORE_LINES, _COMMUNITY_LINES = {True: 257, False: 267}, {True: 263, False: 275}


def _find_commands() -> list[str]:
    """``find -L "$PLUGIN_PATH/enabled" -name commands 2>/dev/null || true``, word-split: every
    file OR DIRECTORY named ``commands`` anywhere under an enabled plugin, symlinks followed."""
    res = subprocess.run(["find", "-L", str(layout().enabled), "-name", "commands"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return res.stdout.split()


def _run_help(paths: list[str], lineno: int) -> tuple[str, int]:
    """``for c in $LIST; do $c help; done`` inside a pipeline under ``set -eo pipefail``: the
    subshell inherits errexit, so the first failing match ends the loop with its exit code (bash's:
    126 "Is a directory" / "Permission denied", 127 "No such file or directory")."""
    output = []
    for path in paths:
        problem = None
        if not os.path.lexists(path) or not os.path.exists(path):
            problem, rc = "No such file or directory", 127
        elif os.path.isdir(path):
            problem, rc = "Is a directory", 126
        elif not os.access(path, os.X_OK):
            problem, rc = "Permission denied", 126
        if problem is None:
            sys.stdout.flush()
            try:
                res = subprocess.run([path, "help"], env=plugin_env(), stdout=subprocess.PIPE, text=True)
            except OSError as exc:
                problem, rc = exc.strerror, 126
            else:
                output.append(res.stdout)
                rc = res.returncode
        if problem:
            err(f"{shutil.which('dokku') or 'dokku'}: line {lineno}: {path}: {problem}")
        if rc:
            return "".join(output), rc
    return "".join(output), 0


def _columns(text: str, drop_subcommands: bool = False) -> None:
    """``sort | [sed ...] | column -c2 -t -s,`` with LC_ALL=C, by the real tools. Without --all,
    Dokku drops core lines holding a ':' and cuts the arguments off the rest."""
    script = "sort"
    if drop_subcommands:
        script += r" | sed -e '/^.*:/d' -e 's/\s[\[\<\-\(].*,/,/'"
    script += " | column -c2 -t -s,"
    sys.stdout.flush()
    subprocess.run(["sh", "-c", script], input=text, text=True, env={**os.environ, "LC_ALL": "C"}, check=False)


def help_cmd(args):
    """``dokku help [--all]`` as Dokku 0.38.27's ``dokku`` script does it (its ``help | ''`` case):
    every ``commands`` match under plugins/enabled runs with ``help``; a match whose real path holds
    ``core-plugins`` is core, the rest community; a failing match exits the whole command with its
    code (the script runs ``set -eo pipefail``). Headers are ``dokku_log_quiet`` (not with --quiet)."""
    show_all = bool(args) and args[0] == "--all"
    found = _find_commands()
    core = [p for p in found if "core-plugins" in os.path.realpath(p)]
    community = [p for p in found if "core-plugins" not in os.path.realpath(p)]
    for line in ("Usage: dokku [--quiet|--trace|--force] COMMAND <app> [command-specific-options]", "",
                 'Primary help options, type "dokku COMMAND:help" for more details, or dokku help --all '
                 "to see all commands.", "", "Commands:", ""):
        if not quiet():
            out(line)
    core_text, rc = _run_help(core, _CORE_LINES[show_all])
    core_text = "".join(f"    {n}, {d}\n" for n, d in BUILTIN_HELP) + core_text
    _columns(core_text, drop_subcommands=not show_all)
    if rc:
        raise DokkuExit(rc)
    if not show_all and not community:
        return 0
    for line in ("", "Community plugin commands:", ""):
        if not quiet():
            out(line)
    text, rc = _run_help(community, _COMMUNITY_LINES[show_all])
    _columns(text)
    if rc:
        raise DokkuExit(rc)
    return 0


COMMANDS = {
    "plugin:install": plugin_install, "plugin:installed": plugin_installed, "plugin:list": plugin_list,
    "plugin": plugin_list, "plugin:uninstall": plugin_uninstall, "plugin:update": plugin_update,
    "plugin:install-dependencies": plugin_install_dependencies,
    "plugin:enable": plugin_enable, "plugin:disable": lambda a: plugin_enable(a, False),
    "plugin:trigger": plugin_trigger,
}
