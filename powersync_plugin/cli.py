"""The command line: parse, call one use case, render. Nothing else lives here.

`powersync:help`, `dokku help` and the README's command reference are generated from the click
metadata below, so usage text exists in exactly one place.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Optional

import click

from powersync_plugin import read_commands, settings, text_views
from powersync_plugin.core.errors import DomainError
from powersync_plugin.cli_journal import COMMANDS as JOURNAL_COMMANDS
from powersync_plugin.cli_rules import COMMANDS as RULES_COMMANDS
from powersync_plugin.cli_transfer import COMMANDS as TRANSFER_COMMANDS
from powersync_plugin.cli_settings import COMMANDS as SETTINGS_COMMANDS
from powersync_plugin.cli_options import (
    dry_run_option, format_option, info_flag_options, instance_argument, no_restart_option, no_wait_option,
    source_role_option,
)
from powersync_plugin.usage import PLUGIN
from powersync_plugin.wiring import Context


def _echo(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, add_help_option=True, commands=RULES_COMMANDS + JOURNAL_COMMANDS + TRANSFER_COMMANDS + SETTINGS_COMMANDS)
def cli() -> None:
    """Run PowerSync Service instances as Dokku apps, with a journal of every change."""


@cli.command("create")
@instance_argument
@click.option("--image", default=settings.DEFAULT_IMAGE, show_default=True, help="PowerSync image repository.")
@click.option("--image-version", default=None, help=f"Exact PowerSync version [default: {settings.PINNED_IMAGE_VERSION}].")
@click.option("--memory", default=settings.DEFAULT_MEMORY, show_default=True, help="Container memory limit; the Node heap gets 80%.")
@click.option(
    "--storage", default="separate-database", show_default=True,
    help="separate-database | same-database | a postgresql:// URI for bucket storage.",
)
@dry_run_option
def create(name: str, image: str, image_version: Optional[str], memory: str, storage: str, dry_run: bool) -> None:
    """Create an instance: a Dokku app, deployed when a backend is linked."""
    from powersync_plugin import lifecycle

    lifecycle.create(Context().build(), name, image, image_version, memory, storage, dry_run)


@cli.command("link")
@instance_argument
@click.argument("backend", metavar="<app>")
@no_restart_option
@click.option("--kid", default=None, help="JWT key id the backend puts in its token header.")
@click.option("--audience", multiple=True, help="Accepted JWT audience (repeatable) [default: the backend app name].")
@click.option("--configure-source", is_flag=True, help="Set wal_level=logical on the source (restarts it).")
@source_role_option
@dry_run_option
def link(name: str, backend: str, no_restart: bool, kid: Optional[str], audience: tuple[str, ...], configure_source: bool, role_mode: str, dry_run: bool) -> None:
    """Link a backend app: derive the JWT key and source, deploy, set POWERSYNC_URL on it."""
    from powersync_plugin import linking

    linking.link(Context().build(), name, backend, no_restart, kid, tuple(audience), configure_source, dry_run, role_mode)


@cli.command("unlink")
@instance_argument
@click.argument("backend", metavar="<app>")
@no_restart_option
@click.option("--keep-slots", is_flag=True, help="Keep the replication slots (they retain WAL).")
@dry_run_option
def unlink(name: str, backend: str, no_restart: bool, keep_slots: bool, dry_run: bool) -> None:
    """Unlink the backend, stop the instance and drop its replication slots."""
    from powersync_plugin import linking

    linking.unlink(Context().build(), name, backend, no_restart, keep_slots, dry_run)


@cli.command("destroy")
@instance_argument
@click.option("-f", "--force", is_flag=True, help="Do not ask for the name.")
@dry_run_option
def destroy(name: str, force: bool, dry_run: bool) -> None:
    """Destroy an unlinked instance: storage, app and files (history stays)."""

    def confirm(expected: str) -> bool:
        click.echo(" !     WARNING: Potentially Destructive Action", err=True)
        click.echo(f" !     This command will destroy the PowerSync instance {expected}.", err=True)
        click.echo(f" !     To proceed, type \"{expected}\"", err=True)
        line = click.get_text_stream("stdin").readline()
        return line.strip() == expected

    from powersync_plugin import lifecycle

    lifecycle.destroy(Context().build(), name, force, confirm, dry_run)


@cli.command("info")
@instance_argument
@info_flag_options
@format_option
def info(name: str, single: Optional[str], output_format: str) -> None:
    """Show an instance (secrets masked); --<flag> prints one raw value."""
    read_commands.info(name, single, output_format)


@cli.command("list")
@format_option
def list_instances(output_format: str) -> None:
    """List instances."""
    read_commands.list_instances(output_format)


@cli.command("exists")
@instance_argument
def exists(name: str) -> None:
    """Exit 0 when the instance exists."""
    read_commands.exists(name)


@cli.command("linked")
@instance_argument
@click.argument("app", metavar="<app>")
def linked(name: str, app: str) -> None:
    """Exit 0 when the instance is linked to the app."""
    read_commands.linked(name, app)


@cli.command("links")
@instance_argument
def links(name: str) -> None:
    """Print the app linked to the instance."""
    read_commands.links(name)


@cli.command("app-links")
@click.argument("app", metavar="<app>")
def app_links(app: str) -> None:
    """Print the instances linked to an app."""
    read_commands.app_links(app)


@cli.command("history")
@instance_argument
@click.option("--rules", "rules_only", is_flag=True, help="Rules revisions only.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help=f"Show the last N rows [default: {read_commands.HISTORY_DEFAULT_LIMIT}].")
@click.option("--all", "show_all", is_flag=True, help="Show every row.")
@click.option("--show", "show", type=click.IntRange(min=1), default=None, metavar="REV", help="One revision in full, with the state folded to it.")
@click.option("--diff", "diff", default=None, metavar="A..B", help="Unified diff of the rules between two rules revisions (B: current).")
@format_option
def history(
    name: str, rules_only: bool, limit: Optional[int], show_all: bool, show: Optional[int], diff: Optional[str],
    output_format: str,
) -> None:
    """Show every change to an instance, oldest first, with its outcome."""
    read_commands.history(name, rules_only, limit, show_all, show, diff, output_format)


@cli.command("adopt")
@instance_argument
@click.option("--backend", default=None, metavar="APP", help="The backend app whose SECRET_KEY signs tokens [default: found from the postgres link].")
@source_role_option
@dry_run_option
def adopt(name: str, backend: Optional[str], role_mode: str, dry_run: bool) -> None:
    """Take over a hand-made PowerSync app with no restart and no reprocessing."""
    from powersync_plugin import adoption

    adoption.adopt(Context().build(), name, backend, dry_run, role_mode)


@cli.command("rotate")
@instance_argument
def rotate(name: str) -> None:
    """Re-derive the instance from its backend's current SECRET_KEY and DATABASE_URL."""
    from powersync_plugin import linking

    linking.rotate(Context().build(), name, "rotated by hand")


@cli.command("upgrade")
@instance_argument
@click.option("--image-version", default=None, help=f"Target version [default: the plugin's pin, {settings.PINNED_IMAGE_VERSION}].")
@click.option("--image", default=None, help="Switch to another image repository.")
@click.option("-f", "--force", is_flag=True, help="Allow a downgrade (storage migrations are not reversible).")
@dry_run_option
def upgrade(name: str, image_version: Optional[str], image: Optional[str], force: bool, dry_run: bool) -> None:
    """Pin a new PowerSync version and redeploy (one restart, gated on readiness)."""
    from powersync_plugin import lifecycle

    lifecycle.upgrade(Context().build(), name, image, image_version, force, dry_run)


@cli.command("reconcile")
@instance_argument
@dry_run_option
def reconcile(name: str, dry_run: bool) -> None:
    """Converge the app on the journal after an interrupted command or manual drift.

    Also gives the linked backend the instance's current URL (POWERSYNC_URL) when its domain or
    certificate changed without the plugin's triggers seeing it.
    """
    from powersync_plugin import reconcile as reconciling

    reconciling.reconcile(Context().build(), name, dry_run)


def _lifecycle_command(action: str, summary: str):
    @instance_argument
    def command(name: str) -> None:
        from powersync_plugin import lifecycle

        sys.exit(lifecycle.start_stop(Context().build(), name, action))

    command.__doc__ = summary
    return cli.command(action)(command)


_lifecycle_command("start", "Start a stopped instance (Dokku's ps:start).")
_lifecycle_command("stop", "Stop an instance (Dokku's ps:stop).")
_lifecycle_command("restart", "Restart an instance; traffic switches once it is ready (ps:restart).")


@cli.command("logs")
@instance_argument
@click.option("-t", "--tail", "tail", is_flag=True, help="Follow the logs.")
@click.option("-n", "--num", "num", type=int, default=None, help="Number of lines.")
def logs(name: str, tail: bool, num: Optional[int]) -> None:
    """Show the instance's logs (Dokku's logs)."""
    from powersync_plugin import read_side

    if not read_side.exists(name):
        raise DomainError(f"PowerSync instance {name} does not exist")
    args = ["logs", name] + (["-t"] if tail else []) + (["-n", str(num)] if num else [])
    os.execvp("dokku", ["dokku", *args])


@cli.command("enter")
@instance_argument
def enter(name: str) -> None:
    """Open a shell in the instance's running container (Dokku's enter)."""
    from powersync_plugin import read_side

    if not read_side.exists(name):
        raise DomainError(f"PowerSync instance {name} does not exist")
    os.execvp("dokku", ["dokku", "enter", name, "web"])


@cli.command("token")
@instance_argument
@click.option("--sub", "subject", required=True, help="Subject (user id) of the token.")
@click.option("--ttl", type=click.IntRange(min=1, max=3600), default=300, show_default=True, help="Lifetime in seconds (at most one hour).")
@click.option("--claim", "claims", multiple=True, metavar="KEY=VALUE", help="Extra claim (repeatable).")
def token(name: str, subject: str, ttl: int, claims: tuple[str, ...]) -> None:
    """Print a development token signed exactly as the backend signs."""
    extra = {}
    for claim in claims:
        key, sep, value = claim.partition("=")
        if not sep or not key:
            raise click.UsageError(f"Invalid --claim {claim!r}: use KEY=VALUE")
        extra[key] = value
    from powersync_plugin import status as status_use_case

    click.echo(status_use_case.token(Context().build(), name, subject, ttl, extra))


@cli.command("status")
@click.argument("name", required=False, metavar="[<name>]")
@click.option("--all", "all_instances", is_flag=True, help="Every instance, one line each (running ones as their latest health check saw them).")
@format_option
def status(name: Optional[str], all_instances: bool, output_format: str) -> None:
    """Readiness, image, drift, rules progress and replication slots of an instance.

    With --all instead of a name: one line per instance with its state,
    image version, rules revision and whether the service runs exactly
    those rules (active, deploying, differs), readiness and replication lag,
    as the Docker engine's health check of each container last saw them
    (every 30 s, POWERSYNC_HEALTH_INTERVAL; CHECKED says how long ago). An
    instance not checked yet is probed live.
    """
    if all_instances == (name is not None):
        raise click.UsageError(f"Give an instance name, or --all: dokku {PLUGIN}:status <name> | --all")
    if all_instances:
        from powersync_plugin import status_all

        Context(json_output=output_format == "json")  # errors are redacted as every command's are
        status_all.show(output_format)
        return
    from powersync_plugin import status as status_use_case

    result = status_use_case.status(Context(json_output=output_format == "json").build(), name)
    if output_format == "json":
        click.echo(json.dumps(result, sort_keys=True, default=str))
        return
    _echo(text_views.status_lines(name, result))


@cli.command("help")
@click.argument("command", required=False, metavar="[<command>]")
def help_command(command: Optional[str]) -> None:
    """Show usage, or one command's help."""
    from powersync_plugin.usage import command_help, usage

    click.echo(command_help(cli, command) if command else usage(cli))
