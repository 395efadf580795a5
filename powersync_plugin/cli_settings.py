"""The commands that change how an instance's service runs: `set` (its settings, and the
plugin-wide image version) and `compact` (bucket compaction, once, now). Kept out of cli.py to
keep that module small; cli.py's group is built with them, so help and the README include them."""
from __future__ import annotations

import click

from powersync_plugin.cli_options import dry_run_option, instance_argument

SETTING_VALUES = (
    "auto-rotate true|false, telemetry on|off, memory SIZE (e.g. 512m), log-level LEVEL, "
    "metrics PORT|off, compact-schedule 'CRON'|off"
)


@click.command("set")
@click.argument("args", nargs=-1, metavar="<name> <key> <value>")
@click.option("--global", "global_", is_flag=True, help="Plugin-wide: `--global image-version X.Y.Z` for new instances.")
@click.option(
    "--no-restart", is_flag=True,
    help="Record the setting without restarting; `powersync:reconcile <name>` applies it later (one restart).",
)
@dry_run_option
def set_command(args: tuple[str, ...], global_: bool, no_restart: bool, dry_run: bool) -> None:
    """Change a setting of an instance, or `--global image-version X.Y.Z`.

    Settings: auto-rotate true|false; telemetry on|off; memory SIZE (the
    container limit through resource:limit, and the Node heap at 80% of it);
    log-level error|warn|info|http|verbose|debug|silly (PowerSync's
    system.logging.level); metrics PORT|off (PowerSync's Prometheus port,
    published on the host's 127.0.0.1 only, at PORT or PORT+1: give Prometheus
    both targets, since a zero-downtime restart needs the second while the old
    container holds the first); compact-schedule 'CRON'|off (the service's
    `compact`, run by Dokku's cron from the image's app.json; see
    `powersync:compact`). A linked instance restarts once, gated on readiness;
    an unlinked one gets the value at link.
    """
    from powersync_plugin import settings_commands
    from powersync_plugin.wiring import Context

    if global_:
        if len(args) != 2:
            raise click.UsageError("Usage: dokku powersync:set --global image-version X.Y.Z")
        if dry_run or no_restart:
            raise click.UsageError("--dry-run and --no-restart are for an instance's settings: --global changes only new instances")
        settings_commands.set_global(Context().build(), *args)
        return
    if len(args) != 3:
        raise click.UsageError(f"Usage: dokku powersync:set <name> <key> <value>; {SETTING_VALUES}")
    settings_commands.set_setting(Context().build(), *args, dry_run=dry_run, no_restart=no_restart)


@click.command("compact")
@instance_argument
def compact(name: str) -> None:
    """Compact the instance's bucket storage now, in a one-off container.

    Runs the service's own `compact` (`dokku run <name> compact`) with the
    instance's config, while the instance keeps serving. For a schedule, use
    `powersync:set <name> compact-schedule '0 3 * * *'` (Dokku's cron, which
    runs the same command); this command is the way when cron is off.
    """
    from powersync_plugin import settings_commands
    from powersync_plugin.wiring import Context

    settings_commands.compact(Context().build(), name)


COMMANDS = (set_command, compact)
