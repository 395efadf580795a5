"""The commands that move an instance between hosts: `export` (its history and settings to stdout,
no secret) and `import` (an export from stdin recreates it, linked again with --link). Kept out
of cli.py to keep that module small; cli.py's group is built with them, so help and the README
reference include them."""
from __future__ import annotations

import json
from typing import Optional

import click

from powersync_plugin.cli_options import dry_run_option, format_option, instance_argument, no_restart_option
from powersync_plugin.core.errors import DomainError
from powersync_plugin.usage import PLUGIN


@click.command("export")
@instance_argument
def export(name: str) -> None:
    """Write an instance's history and settings to stdout (to import on another host).

    One JSON document (format 1, described in the README): every event with
    its revision, time and actor, the settings, the domains. No secret: the
    backend's SECRET_KEY, derived key and DSNs never were in the journal; the
    API token and the fingerprints of secrets are withheld (the import makes
    a new token). Progress goes to stderr:
    `dokku powersync:export NAME > NAME.json`.
    """
    from powersync_plugin import transfer
    from powersync_plugin.wiring import Context

    text = transfer.export(Context(json_output=True).build(), name)
    stdout = click.get_binary_stream("stdout")
    stdout.write(text.encode("utf-8"))
    stdout.flush()


@click.command("import")
@click.option("--link", "backend", default=None, metavar="APP", help="Link the imported instance to this backend app.")
@no_restart_option
@dry_run_option
@format_option
def import_command(backend: Optional[str], no_restart: bool, dry_run: bool, output_format: str) -> None:
    """Recreate an instance from an export on stdin (from another host or before a loss).

    Creates the app with the exported settings and domains, and continues the
    history: the exported revisions keep their numbers, times and actors, and
    the next revision records the import. The instance gets a new API token and
    starts unlinked; --link APP links it through `powersync:link` with the
    exported audience and kid. Refused, with nothing changed: an instance or app
    of that name on this host, a file of a newer format, a corrupt or truncated
    file. --dry-run checks all that and prints the plan.
    `dokku powersync:import --link APP < NAME.json`.
    """
    stdin = click.get_binary_stream("stdin")
    if stdin.isatty():
        raise click.UsageError(f"Pipe an export on stdin: dokku {PLUGIN}:import [--link APP] < NAME.json")
    raw = stdin.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DomainError("The file is not a dokku-powersync export (not UTF-8 text): it is corrupt. Nothing changed") from None
    from powersync_plugin import transfer
    from powersync_plugin.wiring import Context

    result = transfer.import_instance(Context(json_output=output_format == "json").build(), text, backend, no_restart, dry_run)
    if output_format == "json":
        click.echo(json.dumps(result, sort_keys=True))


COMMANDS = (export, import_command)
