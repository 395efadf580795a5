"""The plugin installed into a Dokku harness with `plugin:install`, driving real containers.

One harness (and one plugin install) per session; each test uses its own instance names.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import closing
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from powersync_plugin.core.derive import sign_hs256
from tests.harness.fixture import make_harness
from tests.images.names import STANDIN_REPO

ROOT = Path(__file__).resolve().parents[2]
RULES = """bucket_definitions:
  by_user:
    parameters: SELECT token_parameters.user_id AS user_id
    data:
      - SELECT * FROM todos WHERE owner_id = bucket.user_id
"""
RULES_2 = RULES + """  global:
    data:
      - SELECT * FROM lists
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def images():
    result = subprocess.run([str(ROOT / "tests/images/build")], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def harness(images):
    h = make_harness()
    result = h.install_plugin()
    assert result.returncode == 0, result.stdout + result.stderr
    yield h
    h.cleanup()


@pytest.fixture(scope="module")
def proxied(images):
    """A harness of its own with Dokku's nginx proxy (a real nginx), for the modules that request
    through the public vhost (one per module)."""
    h = make_harness(proxy=True)
    try:
        result = h.install_plugin()
        assert result.returncode == 0, result.stdout + result.stderr
        yield h
    finally:
        h.cleanup()


@dataclass
class Backend:
    app: str
    service: str
    secret_key: str

    def token(self, audience: str, kid: str | None, ttl: int = 300) -> str:
        now = int(time.time())
        claims = {"sub": "user-1", "user_id": "user-1", "aud": audience, "iat": now, "exp": now + ttl}
        return sign_hs256(self.secret_key.encode(), claims, kid)


def make_source(h, wal_level: str = "logical", publication: bool = True, service: str | None = None) -> str:
    service = service or unique("db")
    options = ["--config-options", f"-c wal_level={wal_level}"]
    result = h.run("postgres:create", service, *options)
    assert result.returncode == 0, result.stdout + result.stderr
    sql = "CREATE TABLE todos (id text primary key, owner_id text, title text);\nCREATE TABLE lists (id text primary key);\n"
    if publication:
        sql += "CREATE PUBLICATION powersync FOR ALL TABLES;\n"
    assert h.run("postgres:connect", service, input=sql).returncode == 0
    return service


def make_backend(h, service: str | None, secret_key: str | None = "k" * 64) -> Backend:
    app = unique("api")
    assert h.run("apps:create", app).returncode == 0
    if service:
        assert h.run("postgres:link", service, app).returncode == 0
    if secret_key:
        assert h.run("config:set", "--no-restart", app, f"SECRET_KEY={secret_key}").returncode == 0
    return Backend(app, service or "", secret_key or "")


@pytest.fixture(scope="module")
def source(harness):
    return make_source(harness)


@pytest.fixture
def backend(harness, source):
    return make_backend(harness, source)


def create_instance(h, *flags: str) -> str:
    """An instance of the stand-in (its own repository: the real image on a host stays untouched);
    an ``--image`` in ``flags`` wins, being later on the command line."""
    name = unique("ps")
    result = h.run("powersync:create", name, "--image", STANDIN_REPO, *flags)
    assert result.returncode == 0, result.stdout + result.stderr
    assert h.run("domains:set", name, f"{name}.example.test").returncode == 0
    return name


def linked_instance(h, source: str, *link_flags: str) -> tuple[str, Backend]:
    """A new backend on `source` and an instance with RULES linked to it: (instance, backend)."""
    backend = make_backend(h, source)
    name = create_instance(h)
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    result = h.run("powersync:link", name, backend.app, *link_flags)
    assert result.returncode == 0, result.stdout + result.stderr
    return name, backend


def history(h, name: str, *flags: str) -> list[dict]:
    """`powersync:history NAME --format json [flags]`, parsed."""
    result = h.run("powersync:history", name, "--format", "json", *flags)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def instance(harness):
    return create_instance(harness)


def journal_rows(h) -> list[tuple]:
    path = Path(h.root) / "var/lib/dokku/services/powersync/journal.sqlite3"
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute("SELECT * FROM events ORDER BY sequence").fetchall()


def app_config(h, app: str) -> dict:
    result = h.run("config:export", "--format", "json", app)
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else {}


def containers(h, *apps: str) -> list[str]:
    """This harness's containers (other suites may run beside it), listed in one call: every
    container's name and id, plus the state of each of `apps`' live `APP.web.1`. Other states are
    left out because they change on their own: retired containers stop after the retire wait."""
    from tests.harness.paths import ROOT_LABEL

    result = subprocess.run(
        ["docker", "ps", "-a", "--no-trunc", "--filter", f"label={ROOT_LABEL}={h.root}", "--format", "{{.Names}} {{.ID}} {{.State}}"],
        capture_output=True, text=True, check=True,
    )
    live = {f"{app}.web.1" for app in apps}
    rows = [line.split(" ") for line in result.stdout.splitlines()]
    return sorted(" ".join(row if row[0] in live else row[:2]) for row in rows)


def snapshot(h, *apps: str) -> dict:
    """Everything a refused command must leave exactly as it was."""
    return {
        "journal": journal_rows(h),
        "configs": {app: app_config(h, app) for app in apps},
        "apps": h.run("apps:list").stdout,
        "containers": containers(h, *apps),
    }


def slots(h, service: str) -> list[str]:
    result = h.run("postgres:connect", service, input="\\pset tuples_only on\nSELECT slot_name FROM pg_replication_slots;\n")
    return [line.strip() for line in result.stdout.splitlines() if line.strip() and not line.startswith("Tuples")]


def sync_stream_status(instance: str, token: str) -> tuple[int, str]:
    """A client's POST /sync/stream, made from inside the instance container."""
    container = docker.from_env().containers.get(f"{instance}.web.1")
    script = (
        "fetch('http://127.0.0.1:8080/sync/stream',{method:'POST',headers:{Authorization:'Token '+process.argv[1],"
        "'Content-Type':'application/json'},body:'{}'}).then(async r=>{const t=await r.text();"
        "process.stdout.write(JSON.stringify({status:r.status,body:t.slice(0,500)}))})"
    )
    output = container.exec_run(["node", "-e", script, token]).output.decode()
    parsed = json.loads(output)
    return parsed["status"], parsed["body"]
