"""Entry points of the ``dokku`` and ``plugn`` executables.

``dokku``: global flags (``--quiet``, ``--trace``, ``--force``) only before the subcommand; as
root every command except ``plugin:*`` re-execs as user ``dokku`` (``setpriv``, HOME=DOKKU_ROOT,
environment kept, like ``sudo -u dokku -E -H``). Dispatch order: an enabled plugin's
``subcommands/<sub>`` for ``NAME:sub`` (argv ``NAME:sub args...``), then the harness's core and
dokku-postgres commands, then every enabled plugin's ``commands`` script (exit 10 = not mine),
else `` !     `CMD` is not a dokku command.`` on stderr, rc 1.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time

from . import auth, calllog, triggers
from .output import DokkuExit, out, warn
from .paths import NOT_IMPLEMENTED_EXIT, layout, plugin_env
from .sudo import needs_reexec, reexec_as_dokku

# The modules that define each namespace's core commands (`NAMESPACE:sub`, or the bare word). A
# command imports only its own: real Dokku's `dokku` is bash and starts in milliseconds, and
# importing every harness module cost about 70 ms of every call, the plugin's nested ones
# included, which flattered the benchmarks' ratios to `apps:list` and inflated the plugin's calls.
# tests/testbed/test_harness.py checks this table against the modules' COMMANDS.
NAMESPACES: dict[str, tuple[str, ...]] = {
    "app-json": ("apps",), "apps": ("apps",), "checks": ("apps",), "docker-options": ("apps",),
    "domains": ("apps",), "network": ("apps",), "ports": ("apps",), "resource": ("apps",),
    "storage": ("apps",), "nginx": ("apps", "nginx"), "certs": ("certs",), "letsencrypt": ("certs",),
    "config": ("config",), "cron": ("cron",), "git": ("deploy", "git"), "logs": ("deploy",),
    "ps": ("deploy",), "run": ("deploy",), "plugin": ("plugins",), "postgres": ("postgres",),
    "proxy": ("nginx",), "scheduler": ("scheduler",), "help": ("plugins",),
}


def core_command(cmd: str):
    """The harness's implementation of a core or dokku-postgres command, or None."""
    for name in NAMESPACES.get(cmd.split(":", 1)[0], ()):
        module = importlib.import_module(f"{__package__}.{name}")
        if cmd in module.COMMANDS:
            return module.COMMANDS[cmd]
        if cmd == "help":
            return module.help_cmd
    return None


def dispatch(cmd: str, args: list[str]) -> int:
    lay = layout()
    if ":" in cmd:
        plugin, sub = cmd.split(":", 1)
        script = lay.enabled / plugin / "subcommands" / sub
        if script.is_file() and os.access(script, os.X_OK):
            sys.stdout.flush()
            return subprocess.run([str(script), cmd, *args], env=plugin_env()).returncode
    command = core_command(cmd)
    if command is not None:
        return command(args) or 0
    for plugin in triggers.enabled_plugins():
        script = lay.enabled / plugin / "commands"
        if script.is_file() and os.access(script, os.X_OK):
            sys.stdout.flush()
            rc = subprocess.run([str(script), cmd, *args], env=plugin_env()).returncode
            if rc != NOT_IMPLEMENTED_EXIT:
                return rc
    warn(f"`{cmd}` is not a dokku command.")
    warn("See `dokku help` for a list of available commands.")
    return 1


def dokku_main(argv: list[str]) -> int:
    original = list(argv)
    auth.source_dokkurc()
    while argv and argv[0].startswith("--"):
        flag = argv.pop(0)
        if flag == "--quiet":
            os.environ["DOKKU_QUIET_OUTPUT"] = "1"
        elif flag == "--trace":
            os.environ["DOKKU_TRACE"] = "1"
        elif flag == "--force":
            os.environ["DOKKU_APPS_FORCE_DELETE"] = "1"
        elif flag in ("--help", "-h"):
            argv = ["help"]
            break
    cmd = argv[0] if argv else "help"
    if needs_reexec(original):  # entry.py did it already, unless called in-process
        reexec_as_dokku(original)
    if os.geteuid() == 0:
        os.environ["SSH_USER"] = "root"
    try:
        if not os.access(os.getcwd(), os.R_OK | os.X_OK):
            os.chdir(layout().dokku_root)  # sudo -H from a root-only cwd: keep working
    except OSError:
        os.chdir(layout().dokku_root)
    calllog.begin("dokku", original)
    if cmd in os.environ.get("HARNESS_HANG_COMMANDS", "").split(","):
        # Fault injection: a Dokku command that never answers (a stuck docker daemon, a lock).
        time.sleep(3600)
    try:
        auth.dokku_auth(argv)
        rc = dispatch(cmd, argv[1:])
    except DokkuExit as exc:
        rc = exc.code
    except KeyboardInterrupt:
        rc = 130
    sys.stdout.flush()
    sys.stderr.flush()
    calllog.finish(rc)
    return rc


def plugn_main(argv: list[str]) -> int:
    if not os.environ.get("PLUGIN_PATH"):
        out("!! PLUGIN_PATH is not set in environment")
        return 2
    calllog.begin("plugn", argv)
    try:
        if argv and argv[0] == "trigger":
            rc = triggers.fire(argv[1], argv[2:]) if len(argv) > 1 else 0
        elif argv and argv[0] == "list":
            rc = plugins.plugin_list([])
        elif argv and argv[0] == "version":
            out("0.15.0")
            rc = 0
        else:
            out("usage: plugn trigger NAME [ARGS...]")
            rc = 2
    except DokkuExit as exc:
        rc = exc.code
    sys.stdout.flush()
    calllog.finish(rc)
    return rc
