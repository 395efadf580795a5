"""The commands that change an instance's rules: `set-rules` and `rollback-rules`. Kept out of
cli.py to keep that module small; cli.py's group is built with them."""
from __future__ import annotations

import sys
from typing import Optional

import click

from powersync_plugin.cli_options import dry_run_option, instance_argument, no_wait_option
from powersync_plugin.core.errors import DomainError
from powersync_plugin.usage import PLUGIN
from powersync_plugin.wiring import Context


@click.command("set-rules")
@instance_argument
@no_wait_option
@dry_run_option
def set_rules(name: str, no_wait: bool, dry_run: bool) -> None:
    """Deploy sync rules read from stdin (no restart).

    The rules are checked before they are recorded: by the running instance's
    own API or, when the instance does not run (not linked yet, or stopped), by
    the rules parser in its image, in a one-off container without network.
    Rules either refuses are not recorded; nothing changes. A linked instance
    takes them through PowerSync's deploy API: the previous rules keep serving
    while the new ones replicate, and the command follows that to the end
    (progress, then "active") unless --no-wait.
    """
    stdin = click.get_binary_stream("stdin")
    if stdin.isatty():
        raise click.UsageError(f"Pipe the rules on stdin: dokku {PLUGIN}:set-rules {name} < sync-rules.yaml")
    from powersync_plugin import rules

    rules.set_rules(Context().build(), name, stdin.read(), dry_run, wait=not no_wait)


@click.command("rollback-rules")
@instance_argument
@click.option("--to", "to", default=None, metavar="RREV", help="Rules revision to restore, e.g. r3 [default: the previous one].")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@no_wait_option
@dry_run_option
def rollback_rules(name: str, to: Optional[str], force: bool, no_wait: bool, dry_run: bool) -> None:
    """Redeploy an earlier rules revision's exact bytes as a new revision (history is never rewritten)."""
    from powersync_plugin.read_model import parse_rules_revision

    def confirm(question: str) -> bool:
        if not sys.stdin.isatty():
            raise DomainError("Refusing to roll back without confirmation: no TTY to ask on; use --force")
        return click.confirm(question, default=False, err=True)

    from powersync_plugin import rules

    rules.rollback_rules(
        Context().build(), name, parse_rules_revision(to) if to else None, dry_run, force, confirm, wait=not no_wait,
    )


COMMANDS = (set_rules, rollback_rules)
