"""The command line: parse, call one application function, render. Nothing else lives here.

`powersync:help`, `dokku help` and the README's command reference are generated from the click
metadata below, so usage text exists in exactly one place.
"""
from __future__ import annotations

import json
import os
import pwd
import sys
from typing import Optional

import click

from powersync_plugin import settings
from powersync_plugin.core.errors import DomainError

PLUGIN = "powersync"
HISTORY_DEFAULT_LIMIT = 256  # like `helm history --max`: the newest rows; --all for every one


class Context:
    """Built lazily: read commands never import Docker or open more than the journal."""

    current: Optional["Context"] = None
    app = None

    def __init__(self, json_output: bool = False):
        from powersync_plugin.output import Output
        from powersync_plugin.redact import Redactor

        self.redactor = Redactor()
        self.out = Output(redactor=self.redactor, quiet=json_output)
        Context.current = self  # errors raised later are redacted with what this command learned

    def application(self):
        from powersync_plugin.adapters.docker_engine import DockerEngine
        from powersync_plugin.adapters.dokku import Dokku
        from powersync_plugin.application import Application

        self.app = Application(self.out, Dokku(self.redactor), DockerEngine(), actor(), self.redactor.command_line(command_argv()))
        return self.app


def actor() -> str:
    """Who ran the command, for history. Over SSH, Dokku's SSH_NAME is the key's name; on the host
    it is always `default`, so the person is the login user (the audit loginuid survives sudo and
    Dokku's re-exec as dokku), else the user Dokku re-executed for (SSH_USER, `id -un` before it)."""
    name = os.environ.get("SSH_NAME", "")
    if name and name != "default":
        return name
    return _login_user() or os.environ.get("SSH_USER") or os.environ.get("SUDO_USER") or pwd.getpwuid(os.geteuid()).pw_name


def _login_user() -> Optional[str]:
    try:
        with open("/proc/self/loginuid") as handle:
            uid = int(handle.read().strip())
        user = pwd.getpwuid(uid).pw_name
    except (OSError, ValueError, KeyError):
        return None
    # 4294967295: no login session (a service, a container); dokku: an SSH login without a key name.
    return None if uid == 4294967295 or user == "dokku" else user


def command_argv() -> list[str]:
    return ["dokku", *sys.argv[1:]]


def instance_argument(func):
    return click.argument("name", metavar="<name>")(func)


def format_option(func):
    return click.option(
        "--format", "output_format", type=click.Choice(["stdout", "json"]), default="stdout", show_default=True,
        help="Output format.",
    )(func)


def dry_run_option(func):
    return click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")(func)


def no_restart_option(func):
    return click.option("--no-restart", is_flag=True, help="Do not restart the backend app.")(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, add_help_option=True)
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
    Context().application().create(name, image, image_version, memory, storage, dry_run)


@cli.command("set-rules")
@instance_argument
@dry_run_option
def set_rules(name: str, dry_run: bool) -> None:
    """Publish sync rules read from stdin (one restart, gated on readiness).

    The rules are checked before they are recorded: by the running instance's
    own API or, when the instance does not run (not linked yet, or stopped), by
    the rules parser in its image, in a one-off container without network.
    Rules either refuses are not recorded; nothing changes.
    """
    stdin = click.get_binary_stream("stdin")
    if stdin.isatty():
        raise click.UsageError(f"Pipe the rules on stdin: dokku {PLUGIN}:set-rules {name} < sync-rules.yaml")
    Context().application().set_rules(name, stdin.read(), dry_run)


@cli.command("link")
@instance_argument
@click.argument("backend", metavar="<app>")
@no_restart_option
@click.option("--kid", default=None, help="JWT key id the backend puts in its token header.")
@click.option("--audience", multiple=True, help="Accepted JWT audience (repeatable) [default: the backend app name].")
@click.option("--configure-source", is_flag=True, help="Set wal_level=logical on the source (restarts it).")
@dry_run_option
def link(name: str, backend: str, no_restart: bool, kid: Optional[str], audience: tuple[str, ...], configure_source: bool, dry_run: bool) -> None:
    """Link a backend app: derive the JWT key and source, deploy, set POWERSYNC_URL on it."""
    Context().application().link(name, backend, no_restart, kid, tuple(audience), configure_source, dry_run)


@cli.command("unlink")
@instance_argument
@click.argument("backend", metavar="<app>")
@no_restart_option
@click.option("--keep-slots", is_flag=True, help="Keep the replication slots (they retain WAL).")
@dry_run_option
def unlink(name: str, backend: str, no_restart: bool, keep_slots: bool, dry_run: bool) -> None:
    """Unlink the backend, stop the instance and drop its replication slots."""
    Context().application().unlink(name, backend, no_restart, keep_slots, dry_run)


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

    Context().application().destroy(name, force, confirm, dry_run)


INFO_FLAGS = (
    "name", "status", "image", "image-version", "memory", "storage", "storage-database", "linked-backend",
    "postgres-service", "url", "audience", "kid", "rules-revision", "rules-digest", "slot-prefix", "api-token",
    "journal-revision", "pending-change", "auto-rotate", "stale",
)


def _info_flag_options(func):
    for flag in reversed(INFO_FLAGS):
        func = click.option(f"--{flag}", "single", flag_value=flag, help=f"Print only the {flag.replace('-', ' ')}.")(func)
    return func


@cli.command("info")
@instance_argument
@_info_flag_options
@format_option
def info(name: str, single: Optional[str], output_format: str) -> None:
    """Show an instance (secrets masked); --<flag> prints one raw value."""
    from powersync_plugin import reads

    fields = reads.info(name)
    if single:
        click.echo(fields[single])
    elif output_format == "json":
        click.echo(json.dumps(fields, sort_keys=True))
    else:
        click.echo(f"=====> {name} powersync service information")
        width = max(len(key) for key in fields) + 2
        for key, value in fields.items():
            label = key.replace("-", " ").capitalize() + ":"
            click.echo(f"       {label:<{width}}{value}")


@cli.command("list")
@format_option
def list_instances(output_format: str) -> None:
    """List instances."""
    from powersync_plugin import reads

    rows = reads.list_instances()
    if output_format == "json":
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo(" !     There are no PowerSync instances", err=True)
        return
    click.echo("=====> PowerSync instances")
    for row in rows:
        click.echo(f"{row['name']}")


@cli.command("exists")
@instance_argument
def exists(name: str) -> None:
    """Exit 0 when the instance exists."""
    from powersync_plugin import reads

    if not reads.exists(name):
        raise DomainError(f"PowerSync instance {name} does not exist")
    click.echo(f"-----> PowerSync instance {name} exists")


@cli.command("linked")
@instance_argument
@click.argument("app", metavar="<app>")
def linked(name: str, app: str) -> None:
    """Exit 0 when the instance is linked to the app."""
    from powersync_plugin import reads

    if reads.linked_backend(name) != app:
        raise DomainError(f"PowerSync instance {name} is not linked to {app}")
    click.echo(f"-----> PowerSync instance {name} is linked to {app}")


@cli.command("links")
@instance_argument
def links(name: str) -> None:
    """Print the app linked to the instance."""
    from powersync_plugin import reads

    backend = reads.linked_backend(name)
    if backend:
        click.echo(backend)


@cli.command("app-links")
@click.argument("app", metavar="<app>")
def app_links(app: str) -> None:
    """Print the instances linked to an app."""
    from powersync_plugin import reads

    for name in reads.instances_linked_to(app):
        click.echo(name)


@cli.command("history")
@instance_argument
@click.option("--rules", "rules_only", is_flag=True, help="Rules revisions only.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help=f"Show the last N rows [default: {HISTORY_DEFAULT_LIMIT}].")
@click.option("--all", "show_all", is_flag=True, help="Show every row.")
@click.option("--show", "show", type=click.IntRange(min=1), default=None, metavar="REV", help="One revision in full, with the state folded to it.")
@click.option("--diff", "diff", default=None, metavar="A..B", help="Unified diff of the rules between two rules revisions (B: current).")
@format_option
def history(
    name: str, rules_only: bool, limit: Optional[int], show_all: bool, show: Optional[int], diff: Optional[str],
    output_format: str,
) -> None:
    """Show every change to an instance, oldest first, with its outcome."""
    from powersync_plugin import reads

    if show is not None:
        detail = reads.revision_detail(name, show)
        if output_format == "json":
            click.echo(json.dumps(detail, sort_keys=True))
            return
        click.echo(f"=====> {name} revision {show}")
        for key, value in detail["event"].items():
            click.echo(f"       {key + ':':<14}{value if not isinstance(value, dict) else json.dumps(value, sort_keys=True)}")
        click.echo(f"=====> {name} state at revision {show}")
        for key, value in detail["state"].items():
            click.echo(f"       {key + ':':<19}{value}")
        return
    if diff is not None:
        for line in reads.rules_diff_between(name, diff):
            click.echo(line)
        return
    rows = reads.history(name, rules_only, None if show_all else (limit or HISTORY_DEFAULT_LIMIT))
    if output_format == "json":
        click.echo(json.dumps([row.as_json() for row in rows]))
        return
    if not rows:
        raise DomainError(f"PowerSync instance {name} has no history")
    click.echo(f"=====> {name} history")
    header = f"{'REV':<5}{'TIME (UTC)':<22}{'ACTOR':<12}{'EVENT':<20}{'STATUS':<12}{'RULES':<18}DESCRIPTION"
    click.echo(header)
    for row in rows:
        rules = f"{row.rules_revision} {row.rules_digest}" if row.rules_revision else "-"
        status = row.status + (f": {row.reason}" if row.reason and row.status == "failed" else "")
        description = row.description + (f" [{status}]" if row.status == "failed" else "")
        click.echo(f"{row.revision:<5}{row.recorded_at:<22}{row.actor[:11]:<12}{row.event:<20}{row.status:<12}{rules:<18}{description}")


@cli.command("rollback-rules")
@instance_argument
@click.option("--to", "to", default=None, metavar="RREV", help="Rules revision to restore, e.g. r3 [default: the previous one].")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@dry_run_option
def rollback_rules(name: str, to: Optional[str], force: bool, dry_run: bool) -> None:
    """Republish an earlier rules revision as a new revision (history is never rewritten)."""
    from powersync_plugin.queries import parse_rules_revision

    def confirm(question: str) -> bool:
        if not sys.stdin.isatty():
            raise DomainError("Refusing to roll back without confirmation: no TTY to ask on; use --force")
        return click.confirm(question, default=False, err=True)

    Context().application().rollback_rules(name, parse_rules_revision(to) if to else None, dry_run, force, confirm)


@cli.command("adopt")
@instance_argument
@click.option("--backend", default=None, metavar="APP", help="The backend app whose SECRET_KEY signs tokens [default: found from the postgres link].")
@dry_run_option
def adopt(name: str, backend: Optional[str], dry_run: bool) -> None:
    """Take over a hand-made PowerSync app with no restart and no reprocessing."""
    Context().application().adopt(name, backend, dry_run)


@cli.command("set")
@click.argument("args", nargs=-1, metavar="<name> <key> <value>")
@click.option("--global", "global_", is_flag=True, help="Plugin-wide: `--global image-version X.Y.Z` for new instances.")
def set_command(args: tuple[str, ...], global_: bool) -> None:
    """Change a setting: `<name> auto-rotate true|false`, or `--global image-version X.Y.Z`."""
    if global_:
        if len(args) != 2:
            raise click.UsageError("Usage: dokku powersync:set --global image-version X.Y.Z")
        Context().application().set_global(*args)
        return
    if len(args) != 3:
        raise click.UsageError("Usage: dokku powersync:set <name> auto-rotate true|false")
    Context().application().set_setting(*args)


@cli.command("rotate")
@instance_argument
def rotate(name: str) -> None:
    """Re-derive the instance from its backend's current SECRET_KEY and DATABASE_URL."""
    Context().application().rotate(name, "rotated by hand")


@cli.command("upgrade")
@instance_argument
@click.option("--image-version", default=None, help=f"Target version [default: the plugin's pin, {settings.PINNED_IMAGE_VERSION}].")
@click.option("--image", default=None, help="Switch to another image repository.")
@click.option("-f", "--force", is_flag=True, help="Allow a downgrade (storage migrations are not reversible).")
@dry_run_option
def upgrade(name: str, image_version: Optional[str], image: Optional[str], force: bool, dry_run: bool) -> None:
    """Pin a new PowerSync version and redeploy (one restart, gated on readiness)."""
    Context().application().upgrade(name, image, image_version, force, dry_run)


@cli.command("reconcile")
@instance_argument
@dry_run_option
def reconcile(name: str, dry_run: bool) -> None:
    """Converge the app on the journal after an interrupted command or manual drift.

    Also gives the linked backend the instance's current URL (POWERSYNC_URL) when its domain or
    certificate changed without the plugin's triggers seeing it.
    """
    Context().application().reconcile(name, dry_run)


def _lifecycle_command(action: str, summary: str):
    @instance_argument
    def command(name: str) -> None:
        sys.exit(Context().application().lifecycle(name, action))

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
    from powersync_plugin import reads

    if not reads.exists(name):
        raise DomainError(f"PowerSync instance {name} does not exist")
    args = ["logs", name] + (["-t"] if tail else []) + (["-n", str(num)] if num else [])
    os.execvp("dokku", ["dokku", *args])


@cli.command("enter")
@instance_argument
def enter(name: str) -> None:
    """Open a shell in the instance's running container (Dokku's enter)."""
    from powersync_plugin import reads

    if not reads.exists(name):
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
    click.echo(Context().application().token(name, subject, ttl, extra))


@cli.command("status")
@instance_argument
@format_option
def status(name: str, output_format: str) -> None:
    """Readiness, image, drift, rules progress and replication slots of an instance."""
    result = Context(json_output=output_format == "json").application().status(name)
    if output_format == "json":
        click.echo(json.dumps(result, sort_keys=True, default=str))
        return
    click.echo(f"=====> {name} status")
    for key, value in result.items():
        if key in ("active-rules", "deploying-rules"):
            value = "-" if not value else (
                f"slot {value['slot']}, lag {value['lag_bytes'] if value['lag_bytes'] is not None else '?'} bytes"
                + (f", errors: {'; '.join(value['errors'])}" if value["errors"] else "")
            )
        if key == "replication-errors":
            value = "; ".join(value) or "-"
        if key == "slots":
            value = ", ".join(f"{s['slot']} ({'active' if s['active'] else 'inactive'}, {s['retained_wal']} retained)" for s in value) or "-"
        click.echo(f"       {key.replace('-', ' ').capitalize() + ':':<16}{value}")


@cli.command("help")
@click.argument("command", required=False, metavar="[<command>]")
def help_command(command: Optional[str]) -> None:
    """Show usage, or one command's help."""
    from powersync_plugin.help_text import command_help, usage

    click.echo(command_help(cli, command) if command else usage(cli))


def _report_timings(started: float) -> None:
    """POWERSYNC_TIMINGS=1: where a command's time went (benchmarks/own_overhead.py reads it)."""
    import time

    app = Context.current.app if Context.current else None
    total = time.monotonic() - started
    dokku = app.dokku.timer.seconds if app else 0.0
    waits = app.waited if app else 0.0
    service = app.docker.service_seconds if app else 0.0
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
        from powersync_plugin.redact import Redactor

        redactor = Context.current.redactor if Context.current else Redactor()
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
