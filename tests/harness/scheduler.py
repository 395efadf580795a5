"""``scheduler:report`` and ``scheduler:set`` (dokku/dokku plugins/scheduler: report.go,
subcommands.go). The selected scheduler is an app property (``selected``) with a global default;
``--scheduler-computed-selected`` is the app's, else the global one, else ``docker-local``.
Only the property is modelled: the harness deploys with docker-local whatever is selected, so a
test can show the plugin refusing an instance moved to ``k3s`` before anything is deployed.
"""
from __future__ import annotations

from . import state
from .output import fail, info2, no_app, report
from .paths import layout


def _global_file():
    return layout().dokku_root / ".harness-scheduler-global.json"


def _global() -> dict:
    return state._read_json(_global_file(), {})


def scheduler_report(args):
    if not args or (args[0].startswith("--") and args[0] != "--global"):
        no_app()
    target = args[0]
    glob = _global().get("selected", "")
    if target == "--global":
        rows = {"scheduler-computed-selected": glob or "docker-local", "scheduler-global-selected": glob}
    else:
        app = state.require_app(target)
        selected = state.load_app(app).get("scheduler", {}).get("selected", "")
        rows = {
            "scheduler-computed-selected": selected or glob or "docker-local",
            "scheduler-global-selected": glob,
            "scheduler-selected": selected,
        }
    report(target, "scheduler information", rows, None, args[1:])
    return 0


def scheduler_set(args):
    if len(args) < 2:
        fail("Please specify an app and a property")
    target, prop, value = args[0], args[1], (args[2] if len(args) > 2 else "")
    if prop not in ("selected", "shell"):
        fail("Invalid property specified, valid properties include: selected, shell")
    if target == "--global":
        with state.locked():
            data = _global()
            data[prop] = value
            state._write_json(_global_file(), data)
    else:
        app = state.require_app(target)
        with state.edit_app(app) as data:
            data.setdefault("scheduler", {})[prop] = value
    info2(f"Setting {prop} to {value}" if value else f"Unsetting {prop}")
    return 0


COMMANDS = {"scheduler:report": scheduler_report, "scheduler:set": scheduler_set}
