"""Dokku's line formats and exit codes (facts: dokku-transcripts.md, "Global rules")."""
from __future__ import annotations

import json
import os
import sys

APP_MISSING_EXIT = 20
FLAG_ERROR_EXIT = 2


class DokkuExit(Exception):
    """Stop the command with an exit code (the message was already printed)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def quiet() -> bool:
    return bool(os.environ.get("DOKKU_QUIET_OUTPUT"))


def out(text: str = "", *, end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


def err(text: str, *, end: str = "\n") -> None:
    sys.stderr.write(text + end)
    sys.stderr.flush()


def info1(msg: str) -> None:
    out(f"-----> {msg}")


def info2(msg: str) -> None:
    out(f"=====> {msg}")


def verbose(msg: str) -> None:
    out(f"       {msg}")


def warn(msg: str, *, stdout: bool = False) -> None:
    (out if stdout else err)(f" !     {msg}")


def fail(msg: str, code: int = 1, *, stdout: bool = False):
    warn(msg, stdout=stdout)
    raise DokkuExit(code)


def app_missing(app: str, *, stdout: bool = False):
    fail(f"App {app} does not exist", APP_MISSING_EXIT, stdout=stdout)


def no_app():
    fail("Please specify an app to run the command on")


def go_json(obj) -> str:
    """json.Marshal's shape: compact, HTML characters escaped."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def flag_error(cmd: str, flag: str, usage: list[str]):
    """Go pflag: unknown flag -> usage on stderr, rc 2."""
    err(f"Usage of {cmd}:")
    for line in usage:
        err(line)
    err(f"unknown flag: {flag}")
    raise DokkuExit(FLAG_ERROR_EXIT)


def parse_flags(cmd: str, args: list[str], bools=(), values=(), usage=None, aliases=None):
    """Interspersed Go-style flag parsing. Returns (flags dict, positionals)."""
    aliases = aliases or {}
    flags: dict = {}
    pos: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            pos.extend(args[i + 1:])
            break
        if a.startswith("-") and len(a) > 1:
            name, eq, val = a.partition("=")
            name = aliases.get(name, name)
            if name in bools:
                flags[name] = True if not eq else val not in ("false", "0")
            elif name in values:
                if eq:
                    flags[name] = val
                else:
                    if i + 1 >= len(args):
                        err(f"flag needs an argument: {a}")
                        raise DokkuExit(FLAG_ERROR_EXIT)
                    i += 1
                    flags[name] = args[i]
            else:
                flag_error(cmd, name, usage or [f"      {b}" for b in (*bools, *values)])
        else:
            pos.append(a)
        i += 1
    return flags, pos


def report(app: str, title: str, rows: dict, json_rows: dict | None, args: list[str], *, flag_keys=None):
    """Render a Go core ``:report``: human, ``--format json`` or a single ``--<key>`` flag.

    ``rows`` maps flag key (e.g. ``app-created-at``) to value; the human label is the key with
    dashes as spaces and a capital first letter; the value column is ``max(30, widest)+1``.
    """
    flag_keys = flag_keys or list(rows)
    fmt = None
    single = None
    rest = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--format":
            fmt = args[i + 1] if i + 1 < len(args) else ""
            i += 2
            continue
        if a.startswith("--format="):
            fmt = a.split("=", 1)[1]
        elif a.startswith("--"):
            single = a[2:]
        else:
            rest.append(a)
        i += 1
    if single is not None:
        if single not in rows:
            fail("Invalid flag passed, valid flags: " + ", ".join(f"--{k}" for k in sorted(flag_keys)))
        out(rows[single])
        return
    if fmt == "json":
        out(go_json(dict(sorted((json_rows if json_rows is not None else rows).items()))))
        return
    labels = {k: (k.replace("-", " ").replace(".", " ")[:1].upper() + k.replace("-", " ").replace(".", " ")[1:] + ":") for k in rows}
    width = max([30] + [len(v) for v in labels.values()]) + 1
    if not quiet():
        info2(f"{app} {title}")
    for k in sorted(rows):
        verbose(labels[k].ljust(width) + rows[k])
