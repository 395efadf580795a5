"""``config:*`` and the core config triggers (facts: dokku-transcripts.md, config sections).

Modelled where the transcripts are silent:
- ``config:clear`` (no transcript of a success): prints ``-----> Clearing config``, empties the
  whole env (NO_VHOST and GIT_REV included) and fires ``post-config-update APP clear``.
- ``config:unset`` lines are printed even under ``--quiet`` (Go's LogInfo1 is not quiet-aware).
- ``post-config-update`` key order is shuffled (Go map iteration); tests must compare sets.
"""
from __future__ import annotations

import base64
import json
import os
import random
import re
import sys

from . import state, triggers
from .output import DokkuExit, fail, go_json, info1, out, parse_flags, quiet

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sq(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _shuffled(keys):
    keys = list(keys)
    random.shuffle(keys)
    return keys


def parse_pairs(pairs: list[str], encoded: bool) -> dict:
    if not pairs:
        fail("At least one env pair must be given")
    parsed = {}
    for pair in pairs:
        if "=" not in pair:
            fail(f"Invalid env pair: {pair}")
        key, value = pair.split("=", 1)
        if not KEY.match(key):
            fail(f"Invalid key name: '{key}'")
        if encoded:
            try:
                value = base64.b64decode(value).decode()
            except Exception:
                fail(f"Unable to decode value for key {key}")
        parsed[key] = value
    return parsed


def print_pairs(pairs: dict, *, indent: str = "       ") -> None:
    if not pairs:
        return
    width = max(len(k) + 1 for k in pairs) + 2
    for key in sorted(pairs):
        out(indent + (key + ":").ljust(width) + pairs[key])


def set_config(app: str | None, pairs: dict, *, restart: bool, reason: str = "config:set",
               fire_quiet: bool | None = None, echo: bool = True, replace: bool = False) -> int:
    """Write ``pairs`` (``replace``: instead of the whole env), echo them, fire
    post-config-update, restart a deployed app."""
    with state.edit_config(app) as cfg:
        if replace:
            cfg.clear()
        cfg.update(pairs)
    if echo and not quiet():
        info1("Setting config vars")
        print_pairs(pairs)
    if app is None:
        return 0
    triggers.fire("post-config-update", [app, "set", *_shuffled(pairs)], quiet=fire_quiet,
                  stop_on_error=False)
    return restart_if_deployed(app, restart, reason)


def unset_config(app: str | None, keys: list[str], *, restart: bool, reason: str = "config:unset") -> int:
    if not keys:
        fail("At least one key must be given")
    removed = []
    with state.edit_config(app) as cfg:
        for key in keys:
            if key in cfg:
                del cfg[key]
                removed.append(key)
    for key in keys:
        if key in removed:
            info1(f"Unsetting {key}")
        else:
            info1(f"Skipping {key}, it is not set in the environment")
    if app is None or not removed:
        return 0
    triggers.fire("post-config-update", [app, "unset", *_shuffled(removed)], stop_on_error=False)
    return restart_if_deployed(app, restart, reason)


def restart_if_deployed(app: str, restart: bool, reason: str) -> int:
    from . import deploy
    if not restart or not state.app_exists(app) or not deploy.is_deployed(app):
        return 0
    info1(f"Restarting app {app}")
    return deploy.release_and_deploy(app, reason=reason, kind="restart")


def render_export(env: dict, fmt: str) -> tuple[str, bool]:
    """Return (text, ends_with_newline)."""
    keys = sorted(env)
    if fmt == "json":
        return go_json({k: env[k] for k in keys}), True
    if fmt == "json-list":
        return go_json([{"name": k, "value": env[k]} for k in keys]), True
    if fmt == "envfile":
        lines = []
        for k in keys:
            v = env[k]
            if re.fullmatch(r"-?\d+", v):
                lines.append(f"{k}={v}")
            else:
                esc = (v.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
                       .replace('"', '\\"').replace("!", "\\!").replace("$", "\\$").replace("`", "\\`"))
                lines.append(f'{k}="{esc}"')
        return "\n".join(lines), bool(lines)
    if fmt == "docker-args":
        return " ".join(f"--env={k}={sq(env[k])}" for k in keys), True
    if fmt == "shell":
        return "".join(f"{k}={sq(env[k])} " for k in keys), False
    if fmt == "exports":
        return "\n".join(f"export {k}={sq(env[k])}" for k in keys), bool(keys)
    fail(f"Unknown export format: {fmt}")


def merged(app: str | None) -> dict:
    env = state.get_config(None)
    if app is not None:
        env.update(state.get_config(app))
    return env


def _app_or_global(flags, pos):
    if flags.get("--global"):
        return None, pos
    if not pos:
        fail("Please specify an app to run the command on")
    return state.require_app(pos[0]), pos[1:]


# ---- commands -----------------------------------------------------------------------------

def cmd_set(args):
    flags, pos = parse_flags("config:set", args, bools=("--no-restart", "--encoded", "--global"))
    app, pairs = _app_or_global(flags, pos)
    return set_config(app, parse_pairs(pairs, flags.get("--encoded", False)),
                      restart=not flags.get("--no-restart"))


def cmd_unset(args):
    flags, pos = parse_flags("config:unset", args, bools=("--no-restart", "--global"))
    app, keys = _app_or_global(flags, pos)
    return unset_config(app, keys, restart=not flags.get("--no-restart"))


def cmd_get(args):
    flags, pos = parse_flags("config:get", args, bools=("--quoted", "--global"))
    app, rest = _app_or_global(flags, pos)
    if not rest:
        fail("Expected: key")
    env = state.get_config(app)
    if rest[0] not in env:
        raise DokkuExit(1)
    value = env[rest[0]]
    out(sq(value) if flags.get("--quoted") else value)
    return 0


def cmd_keys(args):
    flags, pos = parse_flags("config:keys", args, bools=("--merged", "--global"))
    app, _ = _app_or_global(flags, pos)
    env = merged(app) if flags.get("--merged") else state.get_config(app)
    for k in sorted(env):
        out(k)
    return 0


def cmd_show(args):
    flags, pos = parse_flags("config:show", args, bools=("--merged", "--global", "--shell", "--export"))
    app, _ = _app_or_global(flags, pos)
    env = merged(app) if flags.get("--merged") else state.get_config(app)
    if not quiet():
        out(f"=====> {'global' if app is None else app} env vars")
    print_pairs(env, indent="")
    return 0


def cmd_export(args):
    flags, pos = parse_flags("config:export", args, bools=("--merged", "--global"), values=("--format",))
    app, _ = _app_or_global(flags, pos)
    env = merged(app) if flags.get("--merged") else state.get_config(app)
    text, newline = render_export(env, flags.get("--format", "exports"))
    out(text, end="\n" if newline else "")
    return 0


# ---- config:import (Dokku 0.38.27 plugins/config: SubImport, loadFromFile, loadFromFileJSON) ----

_BLANK = " \t\v\f\r\x85\xa0"
_VAR = re.compile(r"(\\)?(\$)(\()?\{?([A-Z0-9_]+)?\}?")


class EnvfileError(Exception):
    pass


def _expand(value: str, found: dict) -> str:
    """godotenv's expandVariables: $VAR / ${VAR} from the keys read so far, then the environment;
    `\\$` keeps a literal `$`."""
    def one(match):
        if match.group(1) or match.group(3):
            return match.group(0)[1:]
        if match.group(4):
            return found.get(match.group(4), os.environ.get(match.group(4), ""))
        return match.group(0)
    return _VAR.sub(one, value)


def _unescape(value: str) -> str:
    """godotenv's expandEscapes (double quotes only): `\\n`, `\\r` become the characters, any
    other `\\c` (except `\\$`) becomes `c`."""
    value = re.sub(r"\\.", lambda m: {"n": "\n", "r": "\r"}.get(m.group(0)[1], m.group(0)), value)
    return re.sub(r"\\([^$])", r"\1", value)


def parse_envfile(text: str) -> dict:
    """An env file as godotenv v1.5.1 (Dokku's go.mod) parses it: blank and `#` lines skipped,
    optional `export `, `KEY=VALUE` or `KEY: VALUE`; unquoted values end at the line's end or at
    ` #` (trimmed); 'single' quotes are literal, "double" quotes undo `\\n`, `\\r`, `\\"` and
    `\\\\`; both may span lines; unquoted and double-quoted values expand `$VAR`. Known quirk kept:
    a quoted value loses trailing quote characters (`"a\\""` reads as `a\\`)."""
    src = text.replace("\r\n", "\n")
    found: dict = {}
    while True:
        # statement start: skip blank space and comment lines
        while True:
            src = src.lstrip(_BLANK + "\n")
            if src.startswith("#"):
                end = src.find("\n")
                src = "" if end == -1 else src[end + 1:]
                continue
            break
        if not src:
            return found
        if src.startswith("export "):
            src = src[len("export "):].lstrip(_BLANK)
        key, offset = None, 0
        for i, char in enumerate(src):
            if char in _BLANK:
                continue
            if char in "=:":
                key, offset = src[:i], i + 1
                break
            if char == "_" or char.isalnum() or char == ".":
                continue
            raise EnvfileError(f"unexpected character {char!r} in variable name near {src!r}")
        if key is None:
            raise EnvfileError("zero length string") if not src else EnvfileError(f"unexpected character in variable name near {src!r}")
        key = key.rstrip()
        src = src[offset:].lstrip(_BLANK)
        quote = src[:1] if src[:1] in ("'", '"') else ""
        if not quote:
            end = src.find("\n")
            line, src = (src, "") if end == -1 else (src[:end], src[end:])
            cut = len(line)
            for i in range(len(line) - 1, 0, -1):
                if line[i] == "#" and line[i - 1] in _BLANK:
                    cut = i
                    break
            found[key] = _expand(line[:cut].strip(_BLANK), found)
            continue
        for i in range(1, len(src)):
            if src[i] == quote and src[i - 1] != "\\":
                value = src[:i].rstrip(quote).lstrip(quote)
                if quote == '"':
                    value = _expand(_unescape(value), found)
                found[key] = value
                src = src[i + 1:]
                break
        else:
            raise EnvfileError(f"unterminated quoted value {src.split(chr(10), 1)[0]}")


def _read_import(name: str, filename: str, fmt: str) -> dict:
    if fmt == "json":
        try:
            text = sys.stdin.read() if filename == "-" else open(filename).read()
        except OSError as exc:
            fail(f"open {filename}: {exc.strerror.lower()}")
        try:
            data = json.loads(text)
        except ValueError:
            fail("EOF" if not text.strip() else "invalid character in JSON input")
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            fail("json: cannot unmarshal into Go value of type map[string]string")
        return data
    # envfile: stdin for "-", then a file of that name if one exists (loadFromFile stats it too);
    # an unreadable or missing FILE reads as empty.
    found: dict = {}
    try:
        if filename == "-":
            found = parse_envfile(sys.stdin.read())
        if os.path.exists(filename):
            with open(filename) as handle:
                found = parse_envfile(handle.read())
    except EnvfileError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"open {filename}: {exc.strerror.lower()}")
    for key in [k for k in found if not KEY.match(k)]:
        info1(f"Deleting invalid key {key} from config for {name}")
        del found[key]
    return found


def cmd_import(args):
    """``config:import [--no-restart] [--replace] [--format envfile|json] (APP|--global) [FILE|-]``.

    As Dokku 0.38.27's SubImport: under DOKKU_QUIET_OUTPUT nothing is printed; otherwise
    ``-----> Reading config vars from stdin`` (for ``-``), one ``-----> Setting config var K=V``
    per key (Go map order, values in clear), then SetMany's ``Setting config vars`` block. Nothing
    to set fails with ``No config vars to set``. SetMany: ``--replace`` empties the env first;
    a key outside ``[a-zA-Z_][a-zA-Z0-9_]*`` fails (JSON; the envfile reader already dropped it);
    ``post-config-update APP set KEYS`` (the imported keys only, also with --replace); a deployed
    app restarts unless ``--no-restart``."""
    flags, pos = parse_flags("config:import", args, bools=("--no-restart", "--replace", "--global"),
                             values=("--format",))
    app, rest = _app_or_global(flags, pos)
    filename = rest[0] if rest else ""
    fmt = flags.get("--format", "envfile") or "envfile"
    if fmt not in ("envfile", "json"):
        fail(f"Unknown format: {fmt}")
    if filename == "-" and not quiet():
        info1("Reading config vars from stdin")
    pairs = _read_import(app or "--global", filename, fmt)
    if not pairs:
        fail("No config vars to set")
    if not quiet():
        for key in _shuffled(pairs):
            info1(f"Setting config var {key}={pairs[key]}")
    for key in pairs:
        if not KEY.match(key):
            fail(f"Invalid key name: '{key}'")
    return set_config(app, pairs, restart=not flags.get("--no-restart"), reason="config:import",
                      replace=bool(flags.get("--replace")))


def cmd_clear(args):
    flags, pos = parse_flags("config:clear", args, bools=("--no-restart", "--global"))
    app, _ = _app_or_global(flags, pos)
    with state.edit_config(app) as cfg:
        cfg.clear()
    info1("Clearing config")
    if app is None:
        return 0
    triggers.fire("post-config-update", [app, "clear"], stop_on_error=False)
    return restart_if_deployed(app, not flags.get("--no-restart"), "config:clear")


COMMANDS = {
    "config": cmd_show, "config:show": cmd_show, "config:set": cmd_set, "config:unset": cmd_unset,
    "config:get": cmd_get, "config:keys": cmd_keys, "config:export": cmd_export,
    "config:clear": cmd_clear, "config:import": cmd_import,
}


# ---- core triggers (plugn trigger config-*) --------------------------------------------------

@triggers.builtin("config-get", "config")
def trigger_config_get(args):
    if args and args[0] == "--global":
        env, key = state.get_config(None), (args[1] if len(args) > 1 else "")
    else:
        if len(args) < 2:
            return 0
        env, key = state.get_config(args[0]), args[1]
    if key in env:
        out(env[key], end="")
    return 0


@triggers.builtin("config-set", "config")
def trigger_config_set(args):
    restart = True
    encoded = False
    rest = []
    for a in args:
        if a == "--no-restart" and not rest:
            restart = False
        elif a == "--encoded" and not rest:
            encoded = True
        else:
            rest.append(a)
    if not rest:
        fail("Please specify an app to run the command on")
    app = None if rest[0] == "--global" else rest[0]
    return set_config(app, parse_pairs(rest[1:], encoded), restart=restart, reason="config-set")


@triggers.builtin("config-unset", "config")
def trigger_config_unset(args):
    if len(args) < 2:
        fail("Please specify an app and a key")
    app, key = args[0], args[1]
    restart = len(args) > 2 and args[2].lower() in ("true", "1", "t")
    return unset_config(None if app == "--global" else app, [key], restart=restart, reason="config-unset")


def _parse_bool(value: str) -> bool:
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    fail(f'strconv.ParseBool: parsing "{value}": invalid syntax')


@triggers.builtin("config-export", "config")
def trigger_config_export(args):
    args = list(args) + [""] * (4 - len(args))
    app, is_global, is_merged, fmt = args[:4]
    is_global = _parse_bool(is_global)
    is_merged = _parse_bool(is_merged)
    if is_global:
        env = state.get_config(None)
    else:
        state.require_app(app)
        env = merged(app) if is_merged else state.get_config(app)
    text, newline = render_export(env, fmt or "exports")
    out(text, end="\n" if newline else "")
    return 0
