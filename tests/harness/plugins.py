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
Messages follow dokku/dokku's plugin plugin (``Cloning plugin repo URL to PATH``, ``Plugin NAME
enabled``, ``Priming bash-completion cache``, ``Plugin does not exist``); no transcript exists.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tomllib
from pathlib import Path

from . import state, triggers
from .output import DokkuExit, err, fail, info1, out, quiet
from .paths import chown_dokku, layout, plugin_env

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
    if not quiet():
        info1("Priming bash-completion cache")


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
    return 0


def plugin_trigger(args):
    if not args:
        fail("Please specify a trigger")
    return triggers.fire(args[0], args[1:])


BUILTIN_HELP = [
    ("apps", "Manage apps"), ("certs", "Manage SSL (TLS) certs"), ("checks", "Manage zero-downtime settings"),
    ("config", "Manage global and app-specific config vars"),
    ("docker-options", "Manage docker options for an app"), ("domains", "Manage domains used by the proxy"),
    ("git", "Manage app deploys via git"), ("letsencrypt", "Manage the letsencrypt integration"),
    ("logs", "Output app logs"), ("network", "Manage network settings for an app"),
    ("nginx", "Manage the nginx proxy"), ("plugin", "Manage installed plugins"),
    ("ports", "Manage ports for an app"), ("ps", "List processes running in app containers"),
    ("resource", "Manage resource settings for an app"), ("run", "Run a one-off process inside a container"),
    ("storage", "Manage mounted volumes"), ("postgres", "Manage postgres services"),
]


def help_cmd(args):
    lines = [(n, d) for n, d in BUILTIN_HELP]
    lay = layout()
    for plugin in triggers.enabled_plugins():
        script = lay.enabled / plugin / "commands"
        if script.is_file() and os.access(script, os.X_OK):
            res = subprocess.run([str(script), "help"], env=plugin_env(), capture_output=True, text=True)
            for line in res.stdout.splitlines():
                if "," in line:
                    name, desc = line.split(",", 1)
                    lines.append((name.strip(), desc.strip()))
    out("Usage: dokku [--quiet|--trace|--force] COMMAND <app> [command-specific-options]")
    out("")
    out('Primary help options, type "dokku COMMAND:help" for more details, or dokku help --all to see all commands.')
    out("")
    out("Commands:")
    out("")
    width = max(len(n) for n, _ in lines) + 4
    for name, desc in sorted(lines):
        out(f"    {name.ljust(width)}{desc}")
    return 0


COMMANDS = {
    "plugin:install": plugin_install, "plugin:installed": plugin_installed, "plugin:list": plugin_list,
    "plugin": plugin_list, "plugin:uninstall": plugin_uninstall, "plugin:update": plugin_update,
    "plugin:install-dependencies": plugin_install_dependencies,
    "plugin:enable": plugin_enable, "plugin:disable": lambda a: plugin_enable(a, False),
    "plugin:trigger": plugin_trigger,
}
