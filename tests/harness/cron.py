"""``cron:list`` and ``cron:run``: Dokku's app.json cron tasks (Dokku 0.38.27 ``plugins/cron``:
``cron.go`` FetchCronTasks / GenerateCommandID, ``subcommands.go`` CommandList / CommandRun;
docs ``processes/scheduled-cron-tasks.md``).

Tasks come from the ``cron`` list of the app.json extracted from the deployed image (what
``harness-app.json`` keeps as ``deploy.app_json``), so a change of tasks needs a deploy, as on
Dokku. Each task's id is the lowercase base36 of ``APP===COMMAND===SCHEDULE``;
``concurrency_policy`` defaults to ``allow``. ``cron:list APP`` prints Dokku's columnized table
(``ID | Schedule | Concurrency | Maintenance | Command``), ``--format json`` the CronTask
objects. ``cron:run APP ID`` runs the task's command, split into shell words, in a one-off
``run`` container (as ``dokku run APP ...``: the image's entrypoint receives it). Deploy-time
validation (the ``app-json-is-valid`` trigger): a task without command or schedule, a schedule
that is neither five fields nor a descriptor, or an unknown concurrency policy fails the deploy
with Dokku's message. Not modelled: the host crontab itself (nothing runs on a schedule here),
maintenance properties (``cron:set``, ``cron:suspend``/``resume``), ``--detach``, ``--ttl-seconds``,
global tasks.
"""
from __future__ import annotations

import json
import re
import shlex

from . import state
from .output import fail, no_app, out, parse_flags

_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_FIELD = re.compile(r"^[A-Za-z0-9*,/?-]+$")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(data: bytes) -> str:
    """go-base36 EncodeToStringLc: the big-endian number in base 36, a `0` per leading zero byte."""
    number, text = int.from_bytes(data, "big"), ""
    while number:
        number, digit = divmod(number, 36)
        text = _DIGITS[digit] + text
    return "0" * (len(data) - len(data.lstrip(b"\0"))) + text


def _valid_schedule(schedule: str) -> bool:
    if schedule.startswith("@"):
        return schedule in _DESCRIPTORS or bool(re.match(r"^@every \d+[smh]$", schedule))
    fields = schedule.split()
    return len(fields) == 5 and all(_FIELD.match(field) for field in fields)


def tasks(app: str, app_json: dict | None = None) -> list[dict]:
    """The app's cron tasks; a ValueError carries Dokku's message for an invalid entry."""
    if app_json is None:
        app_json = state.load_app(app)["deploy"].get("app_json")
    found = []
    for index, entry in enumerate((app_json or {}).get("cron") or []):
        command, schedule = entry.get("command", ""), entry.get("schedule", "")
        if not command:
            raise ValueError(f"Missing cron task command for app {app} (index {index})")
        if not schedule:
            raise ValueError(f"Missing cron schedule for app {app} (index {index})")
        if not _valid_schedule(schedule):
            raise ValueError(f"Invalid cron schedule for app {app} (schedule {schedule}): expected exactly 5 fields")
        policy = entry.get("concurrency_policy") or "allow"
        if policy not in ("allow", "forbid", "replace"):
            raise ValueError(f"Invalid cron concurrency policy for app {app} (schedule {schedule}): {policy}")
        maintenance = bool(entry.get("maintenance"))
        found.append({
            "id": base36(f"{app}==={command}==={schedule}".encode()), "app": app, "command": command,
            "schedule": schedule, "concurrency_policy": policy, "app-in-maintenance": False,
            "task-in-maintenance": maintenance, "maintenance": maintenance,
        })
    return found


def cron_list(args):
    flags, pos = parse_flags("cron:list", args, values=("--format",))
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    fmt = flags.get("--format", "stdout")
    if fmt not in ("stdout", "json"):
        fail("Invalid format specified, supported formats: json, stdout")
    try:
        found = tasks(app)
    except ValueError as exc:
        fail(str(exc))
    if fmt == "json":
        out(json.dumps(found, separators=(",", ":")))
        return 0
    rows = [["ID", "Schedule", "Concurrency", "Maintenance", "Command"]]
    for task in found:
        maintenance = "true (task)" if task["maintenance"] else "false"
        rows.append([task["id"], task["schedule"], task["concurrency_policy"], maintenance, task["command"]])
    # ryanuber/columnize SimpleFormat: columns padded to their widest cell, glued by two spaces
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out("  ".join(cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)).rstrip())
    return 0


def cron_run(args):
    _, pos = parse_flags("cron:run", args, bools=("--detach",), values=("--ttl-seconds",))
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    if len(pos) < 2:
        fail(f"Please specify a Cron ID from the output of 'dokku cron:list {app}'")
    command = next((task["command"] for task in tasks(app) if task["id"] == pos[1]), "")
    if not command:
        fail(f"No matching Cron ID found. Please specify a Cron ID from the output of 'dokku cron:list {app}'")
    from .deploy import run_cmd

    return run_cmd([app, *shlex.split(command)])


COMMANDS = {"cron:list": cron_list, "cron:run": cron_run}
