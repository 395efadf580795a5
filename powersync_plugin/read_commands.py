"""The read commands' bodies, and their plain forms run without click.

Importing click and building every command costs about half of a read command's process (README:
Performance). So `plain_call` recognises the common argv of `list`, `info`, `exists`, `linked`,
`links`, `app-links`, `history` and `status --all` and runs the same body the click command runs; anything else
(help, a typo, a bad value, a repeated option, `--show`/`--diff`) returns None and goes to click,
which stays the one definition of usage and of every error message. tests/unit/test_read_commands.py
checks that each option here is the click command's and that both parse every argv alike.
"""
from __future__ import annotations

import json
import sys
from typing import Callable, Optional

from powersync_plugin import read_side, text_views
from powersync_plugin.core.errors import DomainError

HISTORY_DEFAULT_LIMIT = 256  # like `helm history --max`: the newest rows; --all for every one
INFO_FLAGS = (
    "name", "status", "image", "image-version", "memory", "storage", "storage-database", "linked-backend",
    "postgres-service", "url", "audience", "kid", "rules-revision", "rules-digest", "rules-state", "slot-prefix", "api-token",
    "journal-revision", "pending-change", "auto-rotate", "telemetry", "log-level", "metrics", "compact-schedule",
    "stale", "source-role",
)
FORMATS = ("stdout", "json")


def _echo(lines: list[str]) -> None:
    stdout = sys.stdout  # looked up per call: click's test runner swaps it
    for line in lines:
        stdout.write(line + "\n")
    stdout.flush()


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def list_instances(output_format: str) -> None:
    rows = read_side.list_instances()
    if output_format == "json":
        _echo([json.dumps(rows)])
        return
    if not rows:
        _err(" !     There are no PowerSync instances")
        return
    _echo(["=====> PowerSync instances", *(row["name"] for row in rows)])


def info(name: str, single: Optional[str], output_format: str) -> None:
    fields = read_side.info(name)
    if single:
        _echo([fields[single]])
    elif output_format == "json":
        _echo([json.dumps(fields, sort_keys=True)])
    else:
        _echo(text_views.info_lines(name, fields))


def exists(name: str) -> None:
    if not read_side.exists(name):
        raise DomainError(f"PowerSync instance {name} does not exist")
    _echo([f"-----> PowerSync instance {name} exists"])


def linked(name: str, app: str) -> None:
    if read_side.linked_backend(name) != app:
        raise DomainError(f"PowerSync instance {name} is not linked to {app}")
    _echo([f"-----> PowerSync instance {name} is linked to {app}"])


def links(name: str) -> None:
    backend = read_side.linked_backend(name)
    if backend:
        _echo([backend])


def app_links(app: str) -> None:
    _echo(read_side.instances_linked_to(app))


def history(
    name: str, rules_only: bool, limit: Optional[int], show_all: bool, show: Optional[int], diff: Optional[str],
    output_format: str,
) -> None:
    if show is not None:
        detail = read_side.revision_detail(name, show)
        if output_format == "json":
            _echo([json.dumps(detail, sort_keys=True)])
            return
        _echo(text_views.revision_lines(name, show, detail))
        return
    if diff is not None:
        _echo(read_side.rules_diff_between(name, diff))
        return
    rows = read_side.history(name, rules_only, None if show_all else (limit or HISTORY_DEFAULT_LIMIT))
    if output_format == "json":
        _echo([json.dumps([row.as_json() for row in rows])])
        return
    if not rows:
        raise DomainError(f"PowerSync instance {name} has no history")
    _echo(text_views.history_lines(name, rows))


def status_all(name: Optional[str], all_instances: bool, output_format: str) -> None:
    from powersync_plugin import status_all as screen

    screen.show(output_format)


def _positive_int(text: str) -> Optional[int]:
    try:
        value = int(text)  # as click's IntRange(min=1) converts it
    except ValueError:
        return None
    return value if value >= 1 else None


def _choice(choices: tuple[str, ...]) -> Callable[[str], Optional[str]]:
    return lambda text: text if text in choices else None


# option -> (parameter, the flag's value, or the converter of the value that follows it)
_FORMAT = {"--format": ("output_format", _choice(FORMATS))}
PLAIN_FORMS: dict[str, tuple[Callable, tuple[str, ...], dict, dict]] = {
    # command: (body, its arguments, its options, the defaults of every parameter the body takes)
    "list": (list_instances, (), _FORMAT, {"output_format": "stdout"}),
    "info": (
        info, ("name",), {**_FORMAT, **{f"--{flag}": ("single", flag) for flag in INFO_FLAGS}},
        {"single": None, "output_format": "stdout"},
    ),
    "exists": (exists, ("name",), {}, {}),
    "linked": (linked, ("name", "app"), {}, {}),
    "links": (links, ("name",), {}, {}),
    "app-links": (app_links, ("app",), {}, {}),
    "history": (
        history, ("name",),
        {**_FORMAT, "--rules": ("rules_only", True), "--all": ("show_all", True), "--limit": ("limit", _positive_int)},
        {"rules_only": False, "limit": None, "show_all": False, "show": None, "diff": None, "output_format": "stdout"},
    ),
    "status": (status_all, ("name",), {**_FORMAT, "--all": ("all_instances", True)},
               {"all_instances": False, "output_format": "stdout"}),
}
# Arguments a command may go without (click's default for them: None), and the only parameters a
# plain form accepts: `status NAME` (the live view) and a bare `status` (a usage error) go to click.
OPTIONAL_ARGUMENTS = {"status": ("name",)}
PLAIN_ONLY: dict[str, Callable[[dict], bool]] = {"status": lambda params: params["all_instances"] and params["name"] is None}


def plain_params(command: str, args: list[str]) -> Optional[dict]:
    """The parameters click would pass for `args`, when they are a plain form; None otherwise."""
    form = PLAIN_FORMS.get(command)
    if form is None:
        return None
    _, names, options, defaults = form
    params, positionals, seen = dict(defaults), [], set()
    tokens = iter(args)
    for token in tokens:
        if not token.startswith("-") or token == "-":
            positionals.append(token)
            continue
        option, has_value, inline = token.partition("=")
        if option not in options:
            return None  # --help, --, a short option, a typo: click answers those
        dest, meaning = options[option]
        if dest in seen:
            return None
        seen.add(dest)
        if not callable(meaning):
            if has_value:
                return None
            params[dest] = meaning
            continue
        text = inline if has_value else next(tokens, None)
        value = None if text is None else meaning(text)
        if value is None:
            return None
        params[dest] = value
    optional = OPTIONAL_ARGUMENTS.get(command, ())
    if not len(names) - len(optional) <= len(positionals) <= len(names):
        return None
    params.update(dict.fromkeys(names))
    params.update(zip(names, positionals))
    return params if PLAIN_ONLY.get(command, lambda _: True)(params) else None


def plain_call(args: list[str]) -> Optional[Callable[[], None]]:
    """`args` (command first, without the `powersync:` prefix) as a call of a read body, or None."""
    if not args:
        return None
    params = plain_params(args[0], args[1:])
    if params is None:
        return None
    body = PLAIN_FORMS[args[0]][0]
    return lambda: body(**params)
