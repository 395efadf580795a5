"""Plugin discovery and trigger firing, the way ``plugn trigger`` does it.

A trigger runs every enabled plugin's executable file of that name, in plugin-name order,
with the trigger's arguments, as the current user (``dokku`` for commands, root for
``plugin:*``), inheriting stdio, with Dokku's plugin environment. The harness's own emulated
plugins (core config triggers, dokku-postgres's ``pre-delete``) take their place in the same
order under their real plugin names (``config``, ``postgres``).
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from typing import Callable

from . import calllog
from .output import DokkuExit
from .paths import layout, plugin_env

# The harness modules that register built-in providers of a trigger: imported when it fires, since
# the dispatcher imports only the modules of the command it runs (cli.NAMESPACES).
# tests/testbed/test_harness.py checks this table against what the modules register.
BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("config-get", "config-set", "config-unset", "config-export"), ("config",)),
    **dict.fromkeys(("post-certs-update", "post-certs-remove"), ("certs",)),
    **dict.fromkeys(("post-domains-update", "post-proxy-ports-update", "post-delete"), ("nginx",)),
    **dict.fromkeys(("post-app-rename-setup", "post-app-clone-setup"), ("apps", "nginx", "postgres")),
    **dict.fromkeys(("post-app-rename", "post-app-clone"), ("apps",)),
    "pre-delete": ("postgres",),
}

# trigger name -> list of (plugin name, function(args) -> rc)
BUILTIN: dict[str, list[tuple[str, Callable[[list[str]], int]]]] = {}


def builtin(trigger: str, plugin: str):
    def register(fn):
        BUILTIN.setdefault(trigger, []).append((plugin, fn))
        return fn
    return register


def enabled_plugins() -> list[str]:
    d = layout().enabled
    if not d.exists():
        return []
    return sorted(p.name for p in d.iterdir() if p.exists())


def plugin_script(plugin: str, name: str):
    path = layout().enabled / plugin / name
    if path.is_file() and os.access(path, os.X_OK):
        return path
    return None


def run_script(path, args: list[str], *, quiet: bool | None = None, capture: bool = False,
               stdin=None) -> subprocess.CompletedProcess:
    sys.stdout.flush()
    sys.stderr.flush()
    env = plugin_env(quiet=quiet)
    return subprocess.run([str(path), *args], env=env, stdin=stdin,
                          stdout=subprocess.PIPE if capture else None, text=capture if capture else None)


def fire(name: str, args: list[str], *, quiet: bool | None = None, stop_on_error: bool = True,
         include_builtin: bool = True) -> int:
    """Fire ``name`` with ``args``; return the first non-zero exit code (0 if all passed)."""
    providers: list[tuple[str, object]] = []
    for plugin in enabled_plugins():
        script = plugin_script(plugin, name)
        if script:
            providers.append((plugin, script))
    if include_builtin:
        for module in BUILTIN_MODULES.get(name, ()):
            importlib.import_module(f"{__package__}.{module}")
        providers.extend(BUILTIN.get(name, []))
    providers.sort(key=lambda p: p[0])
    rc_total = 0
    for _plugin, target in providers:
        if callable(target):
            saved = os.environ.get("DOKKU_QUIET_OUTPUT")
            if quiet is True:
                os.environ["DOKKU_QUIET_OUTPUT"] = "1"
            try:
                rc = target(list(args)) or 0
            except DokkuExit as exc:
                rc = exc.code
            finally:
                if quiet is True:
                    if saved is None:
                        os.environ.pop("DOKKU_QUIET_OUTPUT", None)
                    else:
                        os.environ["DOKKU_QUIET_OUTPUT"] = saved
        else:
            rc = run_script(target, list(args), quiet=quiet).returncode
        if rc and not rc_total:
            rc_total = rc
        if rc and stop_on_error:
            break
    calllog.note_trigger(name, args, bool(quiet) or bool(os.environ.get("DOKKU_QUIET_OUTPUT")), rc_total)
    return rc_total
