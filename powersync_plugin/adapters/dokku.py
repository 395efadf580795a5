"""The one place that runs `dokku`.

Every call into Dokku goes through `Dokku.run`, so the surface the plugin depends on (and the test
harness reproduces) is the list of methods below. Output of Dokku commands is captured, never
streamed: `config:set` / `config:import` echo values in clear text, so only redacted tails are ever
shown. No secret goes on a `dokku` command line: values travel on stdin (config_set).

Access: Dokku runs its `user-auth` trigger (dokku-acl implements it) with SSH_USER, SSH_NAME and
the user's command line before the plugin starts. The plugin's own calls are its work, not new
requests of the user, so they run as root's (`internal_env`); what they reach beyond the checked
instance is checked first with `user_auth`, through the same trigger.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

from powersync_plugin import settings
from powersync_plugin.core.errors import DomainError
from powersync_plugin.redact import Redactor

APP_MISSING_EXIT = 20
TIMED_OUT = 124  # timeout(1)'s exit code
# Commands that deploy or restart (Dokku waits for health checks, retire, ...) get the long
# timeout; every other call reads or writes a little state and should answer within seconds.
DEPLOYING = frozenset({
    "git:from-image", "ps:restart", "ps:start", "ps:rebuild", "ps:stop", "run", "postgres:restart",
    "apps:destroy", "postgres:link", "postgres:unlink",
})


def call_timeout(args: Sequence[str]) -> float:
    restarts = args[0] in ("config:set", "config:import", "config:unset") and "--no-restart" not in args
    if args[0] in DEPLOYING or restarts:
        return settings.seconds("POWERSYNC_DEPLOY_TIMEOUT", 900)
    return settings.seconds("POWERSYNC_DOKKU_TIMEOUT", 120)
NO_CHANGES = "No changes detected"


def identity() -> tuple[str, str]:
    """Who Dokku authorised this command for: `dokku_auth` exports SSH_USER=${SSH_USER:=$USER}
    (root on the host, dokku over SSH) and SSH_NAME=${NAME:=default} (the SSH key's name)."""
    user = os.environ.get("SSH_USER") or os.environ.get("USER", "")
    return user, os.environ.get("SSH_NAME") or os.environ.get("NAME") or "default"


def internal_env() -> dict[str, str]:
    """The environment of the plugin's own `dokku` calls. Every `dokku` run asks user-auth again
    with the inherited identity, so an ACL plugin would refuse a user's `powersync:link` at the
    plugin's `apps:exists` unless the host granted that user every core command the plugin uses
    (and with them, every app). Dokku's own plugins call triggers, which are not asked; the plugin
    does what Dokku does as root on the host instead, and keeps SSH_NAME/NAME for the audit trail."""
    env = dict(os.environ)
    env["SSH_USER"] = "root"
    return env


class DokkuCommandFailed(DomainError):
    def __init__(self, message: str, returncode: int, output: str = ""):
        super().__init__(message)
        self.returncode = returncode
        self.output = output


@dataclass
class CallTimer:
    """Wall time spent inside Dokku, so benchmarks can report the plugin's own overhead. Calls
    may overlap (independent reads run at once): the time counts while at least one runs."""

    seconds: float = 0.0
    calls: int = 0
    _running: int = 0
    _since: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enter(self) -> None:
        with self._lock:
            if self._running == 0:
                self._since = time.monotonic()
            self._running += 1

    def leave(self) -> None:
        with self._lock:
            self._running -= 1
            self.calls += 1
            if self._running == 0:
                self.seconds += time.monotonic() - self._since


@dataclass
class Dokku:
    redactor: Redactor
    timer: CallTimer = field(default_factory=CallTimer)
    binary: str = "dokku"
    plugn: str = "plugn"

    def run(self, *args: str, input: Optional[str] = None, check: bool = True) -> subprocess.CompletedProcess:
        env = internal_env()
        env["DOKKU_QUIET_OUTPUT"] = "1"
        timeout = call_timeout(args)
        self.timer.enter()
        try:
            result = subprocess.run(
                [self.binary, *args],
                input=input if input is not None else "",
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            command = "dokku " + " ".join(self.redactor.argument(arg) for arg in args[:3])
            knob = "POWERSYNC_DEPLOY_TIMEOUT" if args[0] in DEPLOYING else "POWERSYNC_DOKKU_TIMEOUT"
            raise DokkuCommandFailed(
                f"`{command}` did not finish within {timeout:g}s and was stopped: check the host "
                f"(`dokku ps:report`, `docker ps`), or allow more time with {knob}=<seconds>",
                TIMED_OUT,
            ) from None
        finally:
            self.timer.leave()
        if check and result.returncode != 0:
            raise self.failure(args, result)
        return result

    def passthrough(self, *args: str) -> int:
        """Run a Dokku command with the user's terminal (logs, ps:*): its output is Dokku's own."""
        self.timer.enter()
        try:
            return subprocess.run([self.binary, *args], env=internal_env()).returncode
        finally:
            self.timer.leave()

    def user_auth(self, *args: str) -> Optional[str]:
        """Ask Dokku's `user-auth` trigger, exactly as `dokku` asks it before every command,
        whether the user who ran this command may run `args`: None when allowed, else the
        trigger's own words (which never tell whether an app exists)."""
        user, name = identity()
        timeout = settings.seconds("POWERSYNC_DOKKU_TIMEOUT", 120)
        started = time.monotonic()
        try:
            result = subprocess.run(
                [self.plugn, "trigger", "user-auth", user, name, *args], input="", capture_output=True, text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise DokkuCommandFailed(
                f"`plugn trigger user-auth` did not answer within {timeout:g}s: check the host's ACL plugins, or "
                "allow more time with POWERSYNC_DOKKU_TIMEOUT=<seconds>", TIMED_OUT,
            ) from None
        finally:
            self.timer.seconds += time.monotonic() - started
            self.timer.calls += 1
        if result.returncode == 0:
            return None
        lines = [line.removeprefix(" !     ").strip() for line in (result.stderr + result.stdout).splitlines()]
        return self.redactor.text("; ".join(line for line in lines if line)) or f"user-auth exited {result.returncode}"

    def failure(self, args: Sequence[str], result: subprocess.CompletedProcess) -> DokkuCommandFailed:
        output = self.redactor.text((result.stdout or "") + (result.stderr or ""))
        tail = "\n".join(line for line in output.strip().splitlines()[-8:])
        command = "dokku " + " ".join(self.redactor.argument(arg) for arg in args[:3])
        return DokkuCommandFailed(f"`{command}` failed (exit {result.returncode}):\n{tail}", result.returncode, output)

    # apps
    def app_exists(self, app: str) -> bool:
        result = self.run("apps:exists", app, check=False)
        if result.returncode == 0:
            return True
        if result.returncode == APP_MISSING_EXIT:
            return False
        raise self.failure(("apps:exists", app), result)

    def apps_create(self, app: str) -> None:
        self.run("apps:create", app)

    def apps_destroy(self, app: str) -> None:
        self.run("apps:destroy", app, "--force")

    # config
    def config(self, app: str) -> dict[str, str]:
        """All of an app's config vars in one call (values may be secrets: handle with care)."""
        result = self.run("config:export", "--format", "json", app)
        text = result.stdout.strip()
        return json.loads(text) if text else {}

    def config_keys(self, app: str) -> list[str]:
        return [line.strip() for line in self.run("config:keys", app).stdout.splitlines() if line.strip()]

    def config_set(self, app: str, values: Mapping[str, str], restart: bool) -> str:
        """Set config vars with `config:import --format json APP -` (Dokku >= 0.37): the values
        travel on stdin, never on a command line other users can read (`ps`, /proc/PID/cmdline),
        and the 128 KiB argv limit does not apply. JSON needs no quoting rules (Dokku decodes it
        into a map of strings); Dokku fires post-config-update APP set KEYS as for config:set."""
        if not values:
            return ""
        flags = [] if restart else ["--no-restart"]
        document = json.dumps({key: str(value) for key, value in values.items()})
        # Flags first: Dokku's Go flag parser stops at the first positional argument.
        result = self.run("config:import", "--format", "json", *flags, app, "-", input=document, check=False)
        if result.returncode != 0:
            raise self.failure(("config:import", app, "-"), result)
        return result.stdout + result.stderr

    def config_unset(self, app: str, keys: Iterable[str], restart: bool) -> str:
        keys = list(keys)
        if not keys:
            return ""
        flags = [] if restart else ["--no-restart"]
        return self.run("config:unset", *flags, app, *keys).stdout

    # ports, domains, resources
    def ports_map(self, app: str) -> list[str]:
        return self.run("ports:report", app, "--ports-map").stdout.split()

    def ports_add(self, app: str, *mappings: str) -> None:
        """Add mappings, keeping the others (`ports:set` would replace the whole map, dropping
        the https:443 mapping Dokku adds with a certificate)."""
        self.run("ports:add", app, *mappings)

    def ports_remove(self, app: str, *mappings: str) -> None:
        self.run("ports:remove", app, *mappings)

    def memory_limit(self, app: str, memory: str) -> None:
        self.run("resource:limit", "--memory", memory, app)

    def deploy_options(self, app: str) -> list[str]:
        """The app's deploy-phase docker options, one entry each (`docker-options:list`, 0.38)."""
        return [line for line in self.run("docker-options:list", app, "--phase", "deploy").stdout.splitlines() if line.strip()]

    def deploy_option_add(self, app: str, option: str) -> None:
        self.run("docker-options:add", app, "deploy", option)

    def deploy_option_remove(self, app: str, option: str) -> None:
        self.run("docker-options:remove", app, "deploy", option)

    def vhosts(self, app: str) -> list[str]:
        return self.run("domains:report", app, "--domains-app-vhosts").stdout.split()

    def domains_set(self, app: str, *domains: str) -> None:
        self.run("domains:set", app, *domains)

    def tls_enabled(self, app: str) -> bool:
        """True when the app has a certificate, whatever installed it (certs:add, letsencrypt)."""
        return self.run("certs:report", app, "--ssl-enabled").stdout.strip() == "true"

    def storage_mounts(self, app: str) -> list[str]:
        text = self.run("storage:list", app, "--format", "json").stdout.strip()
        return [f"{entry['host_path']}:{entry['container_path']}" for entry in (json.loads(text) if text else [])]

    def storage_unmount(self, app: str, mount: str) -> None:
        self.run("storage:unmount", app, mount)

    def source_image(self, app: str) -> str:
        """The image `git:from-image` last deployed (Dokku keeps it as git's source-image)."""
        return self.run("git:report", app, "--git-source-image").stdout.strip()

    def scheduler(self, app: str) -> Optional[str]:
        """The scheduler that runs the app (docker-local unless moved, e.g. to k3s); None when
        the app does not exist."""
        result = self.run("scheduler:report", app, "--scheduler-computed-selected", check=False)
        return result.stdout.strip() or None if result.returncode == 0 else None

    # deploys
    def deploy_image(self, app: str, image: str) -> Optional[str]:
        """Deploy `image`; its output, or None when Dokku reports the image unchanged (a no-op,
        not a failure). Commands that restart return their output (stdout and stderr): the
        startup checks' verdicts are in it (publishing._verify_deployed)."""
        result = self.run("git:from-image", app, image, check=False)
        if result.returncode == 0:
            return result.stdout + result.stderr
        if NO_CHANGES in (result.stdout + result.stderr):
            return None
        raise self.failure(("git:from-image", app, image), result)

    def restart(self, app: str) -> str:
        result = self.run("ps:restart", app)
        return result.stdout + result.stderr

    def stop(self, app: str) -> None:
        self.run("ps:stop", app)

    def run_oneoff(self, app: str, *command: str) -> subprocess.CompletedProcess:
        """A one-off container with the app's image, env and docker options (links included)."""
        return self.run("run", app, *command, check=False)

    # dokku-postgres
    def postgres_exists(self, service: str) -> bool:
        return self.run("postgres:exists", service, check=False).returncode == 0

    def postgres_links(self, service: str) -> list[str]:
        value = self.run("postgres:info", service, "--links").stdout.strip()
        return [] if value in ("", "-") else value.split()

    def postgres_app_links(self, app: str) -> list[str]:
        """The dokku-postgres services linked to `app`, one a line ([] without dokku-postgres)."""
        result = self.run("postgres:app-links", app, check=False)
        if result.returncode != 0:
            if "is not a dokku command" in result.stderr:
                return []
            raise self.failure(("postgres:app-links", app), result)
        return result.stdout.split()

    def postgres_dsn(self, service: str) -> str:
        return self.run("postgres:info", service, "--dsn").stdout.strip()

    def postgres_link(self, service: str, app: str) -> None:
        self.run("postgres:link", service, app, "--no-restart")

    def postgres_unlink(self, service: str, app: str) -> None:
        self.run("postgres:unlink", service, app, "--no-restart")

    def postgres_query(self, service: str, sql: str) -> list[list[str]]:
        """Rows of a query run through `postgres:connect`, as unaligned tuples."""
        script = "\\pset tuples_only on\n\\pset format unaligned\n\\pset fieldsep '|'\n" + sql
        result = self.run("postgres:connect", service, input=script)
        return [line.split("|") for line in result.stdout.splitlines() if line and not line.startswith(("Tuples", "Output", "Field"))]

    def postgres_restart(self, service: str) -> None:
        self.run("postgres:restart", service)
