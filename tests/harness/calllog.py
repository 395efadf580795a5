"""The call log: one JSON line per ``dokku`` / ``plugn`` invocation in ``calls.jsonl``.

Each record: ``tool`` (dokku|plugn), ``argv`` (secrets masked), ``user``, ``uid``,
``invoked_uid`` (uid before the re-exec to ``dokku``), ``pid``, ``ppid``, ``started``/``ended``
(unix seconds), ``rc``, ``triggers`` (every trigger the harness fired: name, args, quiet, rc),
``deploys`` (every deploy cycle: app, reason, image, new/old container, outcome),
``containers`` (started / stopped / removed container names) and, for ``postgres:connect`` fed
on stdin, ``stdin`` (the SQL, passwords masked).

Values of config vars never reach the log: ``K=V`` arguments become ``K=***`` and any URL
password becomes ``***``. Records are written when the process ends, so a nested call (a
plugin calling ``dokku config:set``) is written before its parent; sort by ``started``.
"""
from __future__ import annotations

import fcntl
import json
import os
import pwd
import re
import time

from .paths import layout

MASK = "***"
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]+)(@)")
_SECRET_FLAGS = {"--password", "--root-password", "-p", "-r"}

_record: dict | None = None


def mask_arg(arg: str) -> str:
    if not arg.startswith("-") and "=" in arg:
        key = arg.split("=", 1)[0]
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            return f"{key}={MASK}"
    return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), arg)


def mask_argv(argv: list[str]) -> list[str]:
    masked = []
    hide_next = False
    for a in argv:
        if hide_next:
            masked.append(MASK)
            hide_next = False
            continue
        if a in _SECRET_FLAGS:
            hide_next = True
            masked.append(a)
            continue
        masked.append(mask_arg(a))
    return masked


def begin(tool: str, argv: list[str]) -> dict:
    global _record
    _record = {
        "tool": tool,
        "argv": mask_argv(argv),
        "user": pwd.getpwuid(os.getuid()).pw_name,
        "uid": os.getuid(),
        "invoked_uid": int(os.environ.get("HARNESS_INVOKED_UID", os.getuid())),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "started": time.time(),
        "triggers": [],
        "deploys": [],
        "containers": {"started": [], "stopped": [], "removed": []},
    }
    return _record


def current() -> dict | None:
    return _record


def note_trigger(name: str, args: list[str], quiet: bool, rc: int) -> None:
    if _record is not None:
        _record["triggers"].append(
            {"name": name, "args": mask_argv(list(args)), "quiet": quiet, "rc": rc, "at": time.time()})


def note_container(kind: str, name: str) -> None:
    if _record is not None:
        _record["containers"][kind].append(name)


def note_deploy(event: dict) -> None:
    if _record is not None:
        _record["deploys"].append(event)


_SQL_PASSWORD = re.compile(r"(\bPASSWORD\s+)('(?:[^']|'')*'|\S+)", re.IGNORECASE)


def mask_sql(text: str) -> str:
    """SQL as it may be logged: URL passwords and ``PASSWORD '...'`` literals become ``***``."""
    return _SQL_PASSWORD.sub(lambda m: m.group(1) + MASK, mask_arg_text(text))


def mask_arg_text(text: str) -> str:
    return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), text)


def note_stdin(text: str) -> None:
    """What a command read on stdin (``postgres:connect``'s SQL), masked: tests tell a read-only
    query from a write by it."""
    if _record is not None:
        _record["stdin"] = mask_sql(text)


def finish(rc: int) -> None:
    if _record is None:
        return
    _record["rc"] = rc
    _record["ended"] = time.time()
    path = layout().calls
    line = json.dumps(_record, sort_keys=True) + "\n"
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(line)
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_UN)


def read(path) -> list[dict]:
    records = []
    try:
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if line:
                    records.append(json.loads(line))
    except FileNotFoundError:
        return []
    records.sort(key=lambda r: r["started"])
    return records
