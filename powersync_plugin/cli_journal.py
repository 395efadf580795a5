"""The commands that hand out what the journal holds, as files: `rules` (a revision's rules, byte
for byte) and `backup-journal` (a checked online copy). Kept out of cli.py to keep that module
small; cli.py's group is built with them, so help and the README reference include them."""
from __future__ import annotations

import json
from typing import Optional

import click

from powersync_plugin.cli_options import format_option, instance_argument


@click.command("rules")
@instance_argument
@click.option("--rev", "rev", default=None, metavar="RREV", help="Rules revision, e.g. r3 [default: the rules in effect].")
def rules(name: str, rev: Optional[str]) -> None:
    """Print the rules of a revision byte for byte (to redirect into a file for set-rules).

    Nothing is added or removed (no trailing newline, line endings kept), so
    `dokku powersync:rules NAME > sync-rules.yaml` followed by
    `dokku powersync:set-rules NAME < sync-rules.yaml` changes nothing.
    """
    from powersync_plugin import read_side
    from powersync_plugin.read_model import parse_rules_revision

    content = read_side.rules_content(name, parse_rules_revision(rev) if rev else None)
    stdout = click.get_binary_stream("stdout")
    stdout.write(content.encode("utf-8"))
    stdout.flush()


@click.command("backup-journal")
@click.argument("path", required=False, metavar="[<path>]")
@click.option("-f", "--force", is_flag=True, help="Replace an existing file at PATH.")
@format_option
def backup_journal(path: Optional[str], force: bool, output_format: str) -> None:
    """Copy the journal online (SQLite backup API) and check the copy with integrity_check.

    The copy is consistent while other commands write, mode 0600. Without
    PATH it goes to the backups directory beside the journal, named by the
    UTC time. PATH's directory must exist; an existing PATH is refused
    unless --force. The README says how to restore a copy.
    """
    from powersync_plugin import journal_safety

    result = journal_safety.backup_journal(path, force)
    if output_format == "json":
        click.echo(json.dumps({"path": str(result.path), "events": result.events, "bytes": result.bytes}, sort_keys=True))
        return
    click.echo(f"-----> Journal copied to {result.path} (integrity_check ok)")
    click.echo(f"       events: {result.events}")
    click.echo(f"       bytes:  {result.bytes}")


COMMANDS = (rules, backup_journal)
