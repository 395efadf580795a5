"""The process entry (`python -m powersync_plugin`): Dokku triggers go to hook_handlers, commands
to the click CLI; known failures become Dokku's ` !     ` lines and exit codes, never tracebacks."""
from __future__ import annotations

import os
import sys
from typing import Optional

import click

from powersync_plugin.core.errors import DomainError
from powersync_plugin.usage import PLUGIN
from powersync_plugin.wiring import Context, current_redactor


def _report_timings(started: float) -> None:
    """POWERSYNC_TIMINGS=1: where a command's time went (benchmarks/own_overhead.py reads it)."""
    import time

    services = Context.current.services if Context.current else None
    total = time.monotonic() - started
    dokku = services.dokku.timer.seconds if services else 0.0
    waits = services.waited if services else 0.0
    service = services.docker.service_seconds if services else 0.0
    click.echo(
        f"timings: total={total:.3f} dokku={dokku:.3f} waits={waits:.3f} service={service:.3f} "
        f"own={total - dokku - waits - service:.3f}",
        err=True,
    )


def main(argv: Optional[list[str]] = None) -> None:
    profile_to = os.environ.get("POWERSYNC_PROFILE")
    if profile_to:  # a developer's view of where a command's own time goes (README: Performance)
        import cProfile

        profiler = cProfile.Profile()
        try:
            profiler.runcall(_main, argv)
        finally:
            profiler.dump_stats(profile_to)
        return
    _main(argv)


def _main(argv: Optional[list[str]] = None) -> None:
    import time

    started = time.monotonic()
    if os.environ.get("POWERSYNC_TIMINGS"):
        import atexit

        atexit.register(_report_timings, started)
    os.umask(0o077)  # the journal, its WAL files and instance files hold secrets
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0].startswith("hook:"):
        from powersync_plugin.hook_handlers import run_hook

        sys.exit(run_hook(args[0].split(":", 1)[1], args[1:]))
    from powersync_plugin.cli import cli  # triggers fire for every app: they skip building the commands

    if args and args[0].startswith(f"{PLUGIN}:"):
        args[0] = args[0].split(":", 1)[1]
    elif args and args[0] == PLUGIN:
        args[0] = "help"
    if not args:
        args = ["help"]
    command = cli.commands.get(args[0])
    if command is None:
        click.echo(f" !     `{PLUGIN}:{args[0]}` is not a powersync command: see `dokku {PLUGIN}:help`", err=True)
        sys.exit(1)
    try:
        command.main(args=args[1:], prog_name=f"dokku {PLUGIN}:{args[0]}", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo(" !     Aborted", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        # Dokku exits 2 for flag errors, with the usage on stderr.
        click.echo(f" !     {exc.format_message()}", err=True)
        if exc.ctx is not None:
            click.echo(exc.ctx.get_usage(), err=True)
        sys.exit(2)
    except DomainError as exc:
        redactor = current_redactor()
        for line in str(exc).splitlines() or [""]:
            click.echo(f" !     {redactor.text(line)}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        from powersync_plugin.adapters.docker_engine import timeout_message

        message = timeout_message(exc)
        if message is None:
            raise
        click.echo(f" !     {message}", err=True)
        sys.exit(1)
