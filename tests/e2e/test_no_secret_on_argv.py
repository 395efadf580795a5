"""Issue 11: no secret on any command line the plugin starts.

Other Unix users of a Dokku host read every process's command line (`ps`, /proc/PID/cmdline). A
sampler thread reads /proc/*/cmdline of every process (containers' processes included: the host
sees them) every few milliseconds while link, set-rules, token, status, rotate (the backend's
auto-rotation hook and `powersync:rotate`), upgrade and adopt run, and the test then looks for the
backend's SECRET_KEY, the derived PS_SECRET_KEY_B64, the DSN passwords, the instance's
PS_API_TOKEN, the `token` command's JWT and any JWT addressed to one of its apps (the link's own
proof-of-auth token included) in what it saw. The host is shared with other test sessions, whose
helpers carry their own tokens: every value looked for is unique to this test.

What is not the plugin's, and how it is told apart:
- The operator's own commands (the test's `config:set ... SECRET_KEY=...` on the backend, the
  Jeeves scripts' commands in `deploy_jeeves`): the sampler is paused around setup, and the one
  operator command sampled on purpose (the `config:set` whose post-config-update hook
  auto-rotates) is ignored by its exact argv tail.
- Dokku's own: dokku-postgres 1.48.0's `service_link` (common-functions) sets `DATABASE_URL`
  with `config_set`, i.e. `plugins/available/config/config_sub set [--no-restart] APP
  DATABASE_URL=postgres://...`: on a real host that process carries the DSN, outside the
  plugin's reach (the harness makes that write in-process, so it never shows here; `dokku_own`
  still names the real shape, exactly, and is checked below). Dokku 0.38.27's deploy does NOT
  put values on argv: plugins/config/docker-args-deploy exports `--format docker-args-keys`
  (`--env=KEY`) and scheduler-docker-local's start-app-container `eval`s the values into the
  environment of `docker container create`; the harness does the same (`-e KEY`), so no deploy
  process is excluded.
"""
from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from contextlib import contextmanager

from powersync_plugin.core.derive import secret_key_b64
from tests.e2e.conftest import RULES, RULES_2, create_instance, make_backend, unique
from tests.e2e.jeeves import deploy_jeeves

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")


class ArgvSampler(threading.Thread):
    """Every distinct command line seen in /proc while running (not paused), with a pid."""

    def __init__(self, interval: float = 0.002):
        super().__init__(daemon=True)
        self.interval = interval
        self.seen: dict[tuple[str, ...], int] = {}
        self.sweeps = 0
        self._halt = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def run(self) -> None:
        me = os.getpid()
        while not self._halt.is_set():
            self._running.wait()
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) == me:
                    continue
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as handle:
                        raw = handle.read()
                except OSError:  # gone between listdir and open
                    continue
                if raw and self._running.is_set():
                    argv = tuple(part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0"))
                    self.seen.setdefault(argv, int(entry))
            self.sweeps += 1
            time.sleep(self.interval)

    @contextmanager
    def paused(self):
        self._running.clear()
        time.sleep(0.05)  # let a sweep in progress finish
        try:
            yield
        finally:
            self._running.set()

    def stop(self) -> None:
        self._halt.set()
        self._running.set()
        self.join(timeout=5)


def dokku_own(argv: tuple[str, ...]) -> bool:
    """dokku-postgres's link writing `<ALIAS>_URL=<dsn>` through Dokku's config binary."""
    if len(argv) < 4 or not argv[0].endswith("/config/config_sub") or argv[1] != "set":
        return False
    rest = [arg for arg in argv[2:] if arg != "--no-restart"]
    return len(rest) == 2 and re.fullmatch(r"[A-Z0-9_]+_URL=postgres://[^\s]+", rest[1]) is not None


def test_dokku_own_is_exactly_the_postgres_link_shape():
    link = ("/var/lib/dokku/plugins/available/config/config_sub", "set", "--no-restart", "app",
            "DATABASE_URL=postgres://postgres:pw@dokku-postgres-db:5432/db")
    assert dokku_own(link)
    assert not dokku_own(link[:4] + ("PS_SECRET_KEY_B64=abc",))
    assert not dokku_own(("dokku", "config:set", "--no-restart", "app", "DATABASE_URL=postgres://u:p@h/d"))
    assert not dokku_own(link + ("PS_API_TOKEN=x",))


def test_no_secret_on_any_command_line(harness, source):
    h = harness
    secret = "Argv-" + "q" * 62
    new_secret = "Rotated-" + "r" * 62
    backend = make_backend(h, source, secret_key=secret)
    name = create_instance(h)
    rotate_argv = ("config:set", "--no-restart", backend.app, f"SECRET_KEY={new_secret}")

    sampler = ArgvSampler()
    sampler.start()
    outputs = []

    def run(*args, input=None):
        result = h.run(*args, input=input)
        assert result.returncode == 0, f"{args[0]}: {result.stdout}\n{result.stderr}"
        outputs.append(result.stdout)
        return result

    try:
        run("powersync:set-rules", name, input=RULES)
        run("powersync:link", name, backend.app)
        run("powersync:set-rules", name, input=RULES_2)
        jwt = run("powersync:token", name, "--sub", "user-1").stdout.strip()
        run("powersync:status", name)
        run(*rotate_argv)  # the operator's write; the plugin's hook auto-rotates inside it
        with sampler.paused():
            run("powersync:set", name, "auto-rotate", "false")
            run("config:set", "--no-restart", backend.app, "SECRET_KEY=" + secret)
        run("powersync:rotate", name)
        run("powersync:upgrade", name, "--image-version", "1.26.0")
        with sampler.paused():
            jeeves = deploy_jeeves(h, "config-b64", product=unique("jv"))
        run("powersync:adopt", jeeves.powersync_app)
        run("powersync:status", jeeves.powersync_app)
    finally:
        sampler.stop()
    assert sampler.sweeps > 100, "the sampler barely ran"

    def dsn_password(service: str) -> str:
        dsn = h.run("postgres:info", service, "--dsn").stdout.strip()
        return dsn.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]

    database_url = h.run("config:get", backend.app, "DATABASE_URL").stdout.strip()
    forbidden = {
        "backend SECRET_KEY": secret, "rotated SECRET_KEY": new_secret,
        "derived key": secret_key_b64(secret), "rotated derived key": secret_key_b64(new_secret),
        "DATABASE_URL password": database_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1],
        "service DSN password": dsn_password(source),
        "API token": h.run("config:get", name, "PS_API_TOKEN").stdout.strip(),
        "token JWT": jwt,
        "Jeeves SECRET_KEY": jeeves.secret_key, "Jeeves derived key": secret_key_b64(jeeves.secret_key),
        "Jeeves DSN password": dsn_password(jeeves.service),
    }
    adopted_token = h.run("config:get", jeeves.powersync_app, "PS_API_TOKEN").stdout.strip()
    if adopted_token:
        forbidden["adopted API token"] = adopted_token
    assert all(len(value) >= 8 for value in forbidden.values()), "a secret the test could not read"

    # Other sessions share this host and run their own helpers with their own tokens: a JWT is
    # this test's when its audience names one of this test's apps (all uniquely named).
    audiences = {name, backend.app, jeeves.audience, jeeves.product, jeeves.powersync_app}

    def ours(token: str) -> bool:
        try:
            payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        except ValueError:
            return False
        aud = payload.get("aud") if isinstance(payload, dict) else None
        return bool(set(aud if isinstance(aud, list) else [aud]) & audiences)

    found = []
    for argv, pid in sampler.seen.items():
        if argv[-len(rotate_argv):] == rotate_argv or dokku_own(argv):
            continue
        line = " ".join(argv)
        hits = [what for what, value in forbidden.items() if value in line]
        if "token JWT" not in hits and any(ours(match) for match in JWT.findall(line)):
            hits.append("a JWT")
        if hits:
            shown = JWT.sub("<jwt>", line)
            for what, value in forbidden.items():
                shown = shown.replace(value, f"<{what}>")
            found.append(f"pid {pid}: {', '.join(hits)} in `{shown[:200]}`")
    assert not found, "secrets on command lines:\n" + "\n".join(sorted(set(found)))
