"""The options several commands share, written once so every command spells them the same way."""
from __future__ import annotations

import click

from powersync_plugin.read_commands import INFO_FLAGS


def instance_argument(func):
    return click.argument("name", metavar="<name>")(func)


def format_option(func):
    return click.option(
        "--format", "output_format", type=click.Choice(["stdout", "json"]), default="stdout", show_default=True,
        help="Output format.",
    )(func)


def dry_run_option(func):
    return click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")(func)


def no_wait_option(func):
    return click.option(
        "--no-wait", is_flag=True,
        help="Return once the service accepted the rules, without following the reprocessing to activation.",
    )(func)


def source_role_option(func):
    return click.option(
        "--source-role", "role_mode", type=click.Choice(["superuser", "dedicated"]), default="superuser",
        metavar="ROLE", show_default=True,
        help="superuser: replicate as the backend's DATABASE_URL user; dedicated: as a role of the instance's "
        "own (LOGIN REPLICATION, SELECT on the published tables, owner of its storage), made at link (adopt: at "
        "the first managed change) and dropped at unlink.",
    )(func)


def no_restart_option(func):
    return click.option("--no-restart", is_flag=True, help="Do not restart the backend app.")(func)


def info_flag_options(func):
    for flag in reversed(INFO_FLAGS):
        func = click.option(f"--{flag}", "single", flag_value=flag, help=f"Print only the {flag.replace('-', ' ')}.")(func)
    return func
