"""Fixtures for the stand-in image tests (tests/testbed/test_standin.py).

Everything created here is labelled ``dokku-powersync-test=1`` and removed again. Containers are
reached only through ``docker exec``; nothing on the host connects to a bridge IP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
import uuid
from pathlib import Path

import docker
import pytest
import yaml

from tests.images.names import BASE_IMAGE, PG_IMAGE, STANDIN_IMAGE, STANDIN_IMAGES
from tests.secrets_in_output import known

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tests" / "images" / "build"
LABELS = {"dokku-powersync-test": "1"}
PG_PASSWORD = "testbed-pw"
SECRET = b"a-real-length-shared-secret-for-the-test-bed-0123456789abcdef"
SECRET_B64URL = base64.urlsafe_b64encode(SECRET).decode().rstrip("=")
API_TOKEN = "testbed-api-token"
# No failing test bed test prints them (tests/secrets_in_output.py).
for _secret in (SECRET.decode(), SECRET_B64URL, PG_PASSWORD, API_TOKEN):
    known(_secret)
KID = "jeeves-dev"
AUDIENCE = "jeeves"

RULES = """bucket_definitions:
  global:
    data:
      - SELECT * FROM todos
"""


def _uid() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def ps_docker():
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def ps_images(ps_docker):
    """Runs tests/images/build: builds missing images, rebuilds stale ones (inputs hash label),
    and is a sub-second no-op when everything is current, so edits to tests/standin are never
    tested against an old image."""
    res = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        pytest.fail(f"tests/images/build failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    for tag in (BASE_IMAGE, PG_IMAGE, *STANDIN_IMAGES):
        ps_docker.images.get(tag)
    return {"postgres": PG_IMAGE, "standin": STANDIN_IMAGE}


@pytest.fixture(scope="module")
def ps_network(ps_docker, ps_images):
    net = ps_docker.networks.create(f"dps-test-{_uid()}", driver="bridge", labels=LABELS)
    yield net
    for c in list(ps_docker.containers.list(all=True, filters={"network": net.name})):
        c.remove(force=True, v=True)
    net.remove()


class Pg:
    """A postgres container shared by a module; each test makes its own databases."""

    def __init__(self, container, name):
        self.container = container
        self.name = name

    def psql(self, sql: str, db: str = "postgres", check: bool = True) -> str:
        res = self.container.exec_run(
            ["psql", "-v", "ON_ERROR_STOP=1", "-h", "localhost", "-U", "postgres", "-d", db, "-tA", "-c", sql]
        )
        out = res.output.decode()
        if check and res.exit_code != 0:
            raise AssertionError(f"psql failed ({res.exit_code}): {sql}\n{out}")
        return out.strip()

    def uri(self, db: str, scheme: str = "postgresql") -> str:
        return f"{scheme}://postgres:{PG_PASSWORD}@{self.name}:5432/{db}"

    def new_database(self, prefix: str = "db") -> str:
        db = f"{prefix}_{_uid()}"
        self.psql(f'CREATE DATABASE "{db}"')
        return db

    def slots(self, prefix: str) -> list[str]:
        out = self.psql(f"SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE '{prefix}%' ORDER BY 1")
        return [s for s in out.splitlines() if s]


def _start_pg(ps_docker, network, args):
    name = f"dps-pg-{_uid()}"
    vol = ps_docker.volumes.create(f"{name}-data", labels=LABELS)
    c = ps_docker.containers.run(
        PG_IMAGE,
        args,
        name=name,
        detach=True,
        labels=LABELS,
        environment={"POSTGRES_PASSWORD": PG_PASSWORD},
        network=network.name,
        volumes={vol.name: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
    )
    pg = Pg(c, name)
    wait_for(lambda: c.exec_run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "select 1"]).exit_code == 0,
             60, f"postgres {name} ready")
    return pg, vol


@pytest.fixture(scope="module")
def ps_pg(ps_docker, ps_network):
    """Source + storage server with wal_level=logical."""
    pg, vol = _start_pg(ps_docker, ps_network, ["postgres", "-c", "wal_level=logical", "-c", "max_replication_slots=20", "-c", "max_wal_senders=20"])
    yield pg
    pg.container.remove(force=True, v=True)
    vol.remove(force=True)


@pytest.fixture(scope="module")
def ps_pg_replica(ps_docker, ps_network):
    """A server left at the default wal_level (replica)."""
    pg, vol = _start_pg(ps_docker, ps_network, ["postgres"])
    yield pg
    pg.container.remove(force=True, v=True)
    vol.remove(force=True)


def wait_for(pred, timeout: float, what: str, interval: float = 0.3):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def make_jwt(claims: dict, secret: bytes = SECRET, kid: str | None = KID, alg: str = "HS256") -> str:
    header = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid

    def enc(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")

    signing_input = f"{enc(header)}.{enc(claims)}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(sig).decode().rstrip('=')}"


def claims(**over) -> dict:
    now = int(time.time())
    c = {"sub": "user-1", "aud": AUDIENCE, "iat": now, "exp": now + 300, "user_id": "user-1"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def make_config(pg: Pg, source_db: str, storage_db: str, *, prefix: str, rules: str | None = RULES, **over) -> dict:
    cfg = {
        "replication": {"connections": [{"type": "postgresql", "uri": "!env PS_DATA_SOURCE_URI", "sslmode": "disable",
                                         "slot_name_prefix": prefix}]},
        "storage": {"type": "postgresql", "uri": "!env PS_STORAGE_URI", "sslmode": "disable"},
        "port": 8080,
        "client_auth": {"audience": [AUDIENCE],
                        "jwks": {"keys": [{"kty": "oct", "alg": "HS256", "kid": KID, "k": "!env PS_SECRET_KEY_B64"}]}},
        "api": {"tokens": ["!env PS_API_TOKEN"]},
    }
    if rules is not None:
        cfg["sync_config"] = {"content": rules}
    cfg.update(over)
    return cfg


def _tar(files: dict) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = set()
        for path in files:
            parts = Path(path).parts[1:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _fix_env_tags(text: str) -> str:
    import re

    return re.sub(r"'(!env [A-Za-z0-9_:]+)'", r"\1", text)


class StandIn:
    def __init__(self, container):
        self.container = container

    @property
    def name(self):
        return self.container.name

    def logs(self) -> str:
        return self.container.logs().decode(errors="replace")

    def messages(self) -> str:
        """The log's messages, one a line: the image logs JSON lines by default, as the real one
        does under NODE_ENV=production (quotes in a message are escaped there)."""
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line)["message"])
            except (ValueError, KeyError, TypeError):
                out.append(line)
        return "\n".join(out)

    def status(self) -> str:
        self.container.reload()
        return self.container.status

    def fetch(self, method: str, path: str, headers: dict | None = None, body: str | None = None) -> tuple[int, str]:
        """HTTP request from inside the container (node fetch), like the plugin does."""
        script = (
            "const [m,p,h,b]=process.argv.slice(1);"
            "fetch('http://127.0.0.1:8080'+p,{method:m,headers:JSON.parse(h),body:b===''?undefined:b})"
            ".then(async r=>{process.stdout.write(JSON.stringify({status:r.status,body:await r.text()}))})"
            ".catch(e=>{process.stdout.write(JSON.stringify({status:0,body:String(e)}))})"
        )
        res = self.container.exec_run(["node", "-e", script, method, path, json.dumps(headers or {}), body or ""])
        out = json.loads(res.output.decode())
        return out["status"], out["body"]

    def json(self, method: str, path: str, **kw) -> tuple[int, dict]:
        status, body = self.fetch(method, path, **kw)
        return status, json.loads(body) if body else {}

    def admin(self, method: str, path: str, body: str | None = None, content_type: str = "application/json"):
        return self.json(method, path, headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": content_type},
                         body=body)

    def wait_ready(self, timeout: float = 30):
        def ready():
            if self.status() == "exited":
                raise AssertionError(f"stand-in exited:\n{self.logs()}")
            return self.fetch("GET", "/probes/readiness")[0] == 200

        wait_for(ready, timeout, f"readiness of {self.name}")

    def wait_exit(self, timeout: float = 30) -> int:
        return self.container.wait(timeout=timeout)["StatusCode"]

    def wait_log(self, text: str, timeout: float = 30) -> None:
        wait_for(lambda: text in self.logs(), timeout, f"log line {text!r} in {self.name}")


@pytest.fixture
def ps_standin(ps_docker, ps_network, ps_images, ps_instance):
    """Factory: ps_standin(config_dict_or_text, env=..., command=...) -> StandIn (detached)."""
    created = []

    def start(cfg, *, env: dict | None = None, command=None, image: str = STANDIN_IMAGE,
              config_env: str | None = "POWERSYNC_CONFIG_B64", files: dict | None = None) -> StandIn:
        """cfg: dict (``"!env NAME"`` strings become tags) or YAML text. files: {abs path: text}
        copied into the container before it starts (e.g. a config for POWERSYNC_CONFIG_PATH)."""
        text = cfg if isinstance(cfg, str) else _fix_env_tags(yaml.safe_dump(cfg, sort_keys=False))
        environment = {"PS_SECRET_KEY_B64": SECRET_B64URL, "PS_API_TOKEN": API_TOKEN, **ps_instance["env"]}
        if config_env:
            environment[config_env] = base64.b64encode(text.encode()).decode()
        environment.update(env or {})
        c = ps_docker.containers.create(
            image,
            command,
            name=f"dps-ps-{_uid()}",
            labels=LABELS,
            environment=environment,
            network=ps_network.name,
        )
        created.append(c)
        if files:
            c.put_archive("/", _tar(files))
        c.start()
        return StandIn(c)

    yield start
    for c in created:
        try:
            c.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture
def ps_instance(ps_pg):
    """A fresh source db (with table + publication), storage db and slot prefix for one test."""
    src = ps_pg.new_database("src")
    ps_pg.psql("CREATE TABLE todos (id text PRIMARY KEY, v text); CREATE PUBLICATION powersync FOR ALL TABLES", db=src)
    storage = ps_pg.new_database("st")
    prefix = f"t{_uid()}_"
    env = {"PS_DATA_SOURCE_URI": ps_pg.uri(src), "PS_STORAGE_URI": ps_pg.uri(storage)}
    inst = {"pg": ps_pg, "source_db": src, "storage_db": storage, "prefix": prefix, "env": env,
            "config": make_config(ps_pg, src, storage, prefix=prefix)}
    yield inst
    for slot in ps_pg.slots(prefix):
        ps_pg.psql(f"SELECT pg_drop_replication_slot('{slot}')", check=False)
    ps_pg.psql(f'DROP DATABASE IF EXISTS "{src}" WITH (FORCE)', check=False)
    ps_pg.psql(f'DROP DATABASE IF EXISTS "{storage}" WITH (FORCE)', check=False)


# ---- Dokku harness fixtures (tests/harness; used by tests/testbed/test_harness.py) --------------

PROBE_SCRIPT = """#!/bin/bash
# Logs every trigger it is called as: trigger, user, DOKKU_QUIET_OUTPUT, argv.
python3 -c 'import json,sys,os; print(json.dumps({"trigger": os.path.basename(sys.argv[1]), "user": sys.argv[2], "quiet": os.environ.get("DOKKU_QUIET_OUTPUT", ""), "argv": sys.argv[3:]}))' "$0" "$(id -un)" "$@" >> __LOG__
if [[ "$(basename "$0")" == pre-delete && "$1" == keep-* ]]; then exit 1; fi
if [[ "$(basename "$0")" == install && -e "$(dirname "$0")/FAIL_INSTALL" ]]; then echo "install failed" >&2; exit 1; fi
exit 0
"""

PROBE_COMMANDS = """#!/bin/bash
case "$1" in
  help) echo "    tprobe:hello, say hello" ;;
  tprobe:hello) echo "hello from commands" ;;
  *) exit "$DOKKU_NOT_IMPLEMENTED_EXIT" ;;
esac
"""

PROBE_ENV = """#!/bin/bash
python3 -c 'import json,os,sys; keys=["PLUGIN_PATH","PLUGIN_AVAILABLE_PATH","PLUGIN_ENABLED_PATH","PLUGIN_CORE_AVAILABLE_PATH","DOKKU_LIB_ROOT","DOKKU_ROOT","SSH_USER","DOKKU_NOT_IMPLEMENTED_EXIT","PATH","HOME"]; d={k: os.environ.get(k) for k in keys}; d["argv"]=sys.argv[3:]; d["user"]=sys.argv[1]; print(json.dumps(d))' "$(id -un)" "$0" "$@"
"""

PROBE_TRIGGERS = ("install", "uninstall", "update", "dependencies", "post-config-update", "post-domains-update", "post-create",
                  "pre-delete", "post-delete", "post-deploy", "post-stop", "pre-start", "post-app-rename-setup",
                  "post-app-rename", "post-app-clone-setup", "post-app-clone")


class ProbePlugin:
    """Builds committed plugin repos that log their triggers, and installs them into a harness."""

    def __init__(self, harness):
        self.harness = harness
        self.log_path = harness.root / f"probe-{uuid.uuid4().hex[:6]}.log"
        self.log_path.touch()
        self.log_path.chmod(0o666)

    def _repo(self, name: str, fail_install: bool) -> Path:
        repo = self.harness.root / f"src-{name}"
        (repo / "subcommands").mkdir(parents=True)
        (repo / "plugin.toml").write_text('[plugin]\ndescription = "probe"\nversion = "0.0.1"\n[plugin.config]\n')
        for trigger in PROBE_TRIGGERS:
            (repo / trigger).write_text(PROBE_SCRIPT.replace("__LOG__", str(self.log_path)))
        (repo / "commands").write_text(PROBE_COMMANDS)
        (repo / "subcommands" / "env").write_text(PROBE_ENV)
        if fail_install:
            (repo / "FAIL_INSTALL").write_text("")
        for f in [*repo.iterdir(), *(repo / "subcommands").iterdir()]:
            if f.is_file():
                f.chmod(0o755)
        git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "probe"], check=True)
        return repo

    def install_raw(self, name: str = "tprobe", fail_install: bool = False):
        return self.harness.run("plugin:install", f"file://{self._repo(name, fail_install)}", "--name", name)

    def install(self, name: str = "tprobe"):
        result = self.install_raw(name)
        assert result.returncode == 0, result.stdout + result.stderr
        return self.entries

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def clear(self) -> None:
        self.log_path.write_text("")


def _harness_module(name: str):
    import importlib

    try:
        return importlib.import_module(f"tests.harness.{name}")
    except ImportError:
        return importlib.import_module(f"harness.{name}")


@pytest.fixture
def harness():
    h = _harness_module("fixture").make_harness()
    yield h
    h.cleanup()


@pytest.fixture
def probe_plugin(harness):
    return ProbePlugin(harness)


@pytest.fixture(scope="session")
def harness_web_images():
    build = _harness_module("testapp.build").build
    base = STANDIN_IMAGE
    if subprocess.run(["docker", "image", "inspect", base], capture_output=True).returncode != 0:
        pytest.skip(f"{base} (the stand-in image) is not built")
    return build(base)
