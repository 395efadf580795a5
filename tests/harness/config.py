"""``config:*`` and the core config triggers (facts: dokku-transcripts.md, config sections).

Modelled where the transcripts are silent:
- ``config:clear`` (no transcript of a success): prints ``-----> Clearing config``, empties the
  whole env (NO_VHOST and GIT_REV included) and fires ``post-config-update APP clear``.
- ``config:unset`` lines are printed even under ``--quiet`` (Go's LogInfo1 is not quiet-aware).
- ``post-config-update`` key order is shuffled (Go map iteration); tests must compare sets.
"""
from __future__ import annotations

import base64
import random
import re

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
               fire_quiet: bool | None = None, echo: bool = True) -> int:
    """Write ``pairs``, echo them, fire post-config-update, restart a deployed app."""
    with state.edit_config(app) as cfg:
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
    "config:clear": cmd_clear,
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
