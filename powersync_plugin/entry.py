"""The process entry (`python -m powersync_plugin`): Dokku triggers go to hook_handlers, the plain
forms of read commands to read_commands (no click import), other commands to the click CLI; known failures become Dokku's ` !     ` lines and exit codes, never tracebacks."""
from __future__ import annotations

import os
import sys
from typing import Optional

from powersync_plugin import PLUGIN
from powersync_plugin.core.errors import DomainError


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _report_timings(started: float) -> None:
    """POWERSYNC_TIMINGS=1: where a command's time went (benchmarks/own_overhead.py reads it)."""
    import time

    from powersync_plugin.wiring import Context

    services = Context.current.services if Context.current else None
    total = time.monotonic() - started
    dokku = services.dokku.timer.seconds if services else 0.0
    waits = services.waited if services else 0.0
    service = services.docker.service_seconds if services else 0.0
    _stderr(
        f"timings: total={total:.3f} dokku={dokku:.3f} waits={waits:.3f} service={service:.3f} "
        f"own={total - dokku - waits - service:.3f}"
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
    if args and args[0].startswith(f"{PLUGIN}:"):
        args[0] = args[0].split(":", 1)[1]
    elif args and args[0] == PLUGIN:
        args[0] = "help"
    if not args:
        args = ["help"]
    # A read command's plain form runs without importing click (read_commands.py says why).
    from powersync_plugin.read_commands import plain_call

    call = plain_call(args) or (lambda: _run_click(args))
    try:
        call()
    except DomainError as exc:
        from powersync_plugin.wiring import current_redactor

        redactor = current_redactor()
        for line in str(exc).splitlines() or [""]:
            _stderr(f" !     {redactor.text(line)}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        from powersync_plugin.adapters.docker_engine import timeout_message

        message = timeout_message(exc)
        if message is None:
            raise
        _stderr(f" !     {message}")
        sys.exit(1)


def _run_click(args: list[str]) -> None:
    import click

    from powersync_plugin.cli import cli  # triggers fire for every app: they skip building the commands

    command = cli.commands.get(args[0])
    if command is None:
        _stderr(f" !     `{PLUGIN}:{args[0]}` is not a powersync command: see `dokku {PLUGIN}:help`")
        sys.exit(1)
    try:
        command.main(args=args[1:], prog_name=f"dokku {PLUGIN}:{args[0]}", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _stderr(" !     Aborted")
        sys.exit(1)
    except click.UsageError as exc:
        # Dokku exits 2 for flag errors, with the usage on stderr.
        _stderr(f" !     {exc.format_message()}")
        if exc.ctx is not None:
            _stderr(exc.ctx.get_usage())
        sys.exit(2)
