"""Usage text generated from the click metadata: `powersync:help`, `dokku help`, the README's command
reference. Given the click group, so that it needs no import of the CLI (help_text.py prints it)."""
from __future__ import annotations

import click

from powersync_plugin import PLUGIN


def _signature(command: click.Command) -> str:
    parts = []
    for param in command.params:
        if isinstance(param, click.Argument):
            parts.append(param.metavar or f"<{param.name}>")
    has_options = any(isinstance(param, click.Option) for param in command.params)
    return " ".join(parts + (["[flags]"] if has_options else []))


def _summary(command: click.Command) -> str:
    return (command.help or "").strip().splitlines()[0].rstrip(".")


def rows(group: click.Group) -> list[tuple[str, str]]:
    return [
        (f"{PLUGIN}:{name} {_signature(command)}".strip(), _summary(command))
        for name, command in sorted(group.commands.items())
    ]


def usage(group: click.Group) -> str:
    lines = [f"Usage: dokku {PLUGIN}[:COMMAND]", "", (group.help or "").strip(), "", "Additional commands:"]
    table = rows(group)
    width = max(len(signature) for signature, _ in table) + 2
    lines += [f"    {signature:<{width}}{summary}" for signature, summary in table]
    return "\n".join(lines)


def dokku_help(group: click.Group) -> str:
    """`dokku help` lines: `    name, description`."""
    # Dokku splits these lines into columns at commas, so a summary must not contain one.
    return "\n".join(f"    {signature}, {summary.replace(',', ';')}" for signature, summary in rows(group))


def command_help(group: click.Group, name: str) -> str:
    command = group.commands.get(name.split(":", 1)[-1])
    if command is None:
        raise click.UsageError(f"No such command: {name}")
    with click.Context(command, info_name=f"dokku {PLUGIN}:{name}") as ctx:
        return command.get_help(ctx)


def readme_reference(group: click.Group) -> str:
    sections = []
    for name, command in sorted(group.commands.items()):
        sections.append(f"### `{PLUGIN}:{name}`\n\n```\n{command_help(group, name)}\n```\n")
    return "\n".join(sections)


START, END = "<!-- commands:start -->", "<!-- commands:end -->"


def readme_with_reference(readme: str, group: click.Group) -> str:
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{readme_reference(group)}{END}{tail}"
