"""The hand-made Jeeves deployment (facts/jeeves-deployment.md), reproduced on a Dokku harness.

``deploy_jeeves(h, layout)`` leaves on the harness the end state the Jeeves shell scripts
(``infra/dokku/deploy-powersync.sh`` + ``publish-sync-config.sh``) leave on a host, by running the
same ``dokku`` commands in the same order; it is what ``powersync:adopt`` has to take over.

    d = deploy_jeeves(h, "config-b64")        # or "config-path"; product defaults to jv<6 hex>
    d.powersync_app, d.backend_app, d.service, d.domain, d.kid, d.audience
    d.token()                                 # what the backend hands its clients
    d.sync_status(d.token())                  # (status, body) of POST /sync/stream, from inside
    d.readiness()                             # status of GET /probes/readiness, from inside
    d.slots                                   # replication slots on the source after start

What ends up on the harness:

- dokku-postgres service ``<product>`` (the name the scripts derive from the backend's
  ``DATABASE_URL`` host ``dokku-postgres-<svc>``), with the backend's migrations applied: the
  tables the rules read and ``CREATE PUBLICATION powersync FOR TABLE ...``. ``wal_level`` is
  switched the scripts' way: ``SHOW wal_level`` -> ``ALTER SYSTEM SET wal_level = logical`` ->
  ``postgres:restart`` -> wait for ``SELECT 1`` -> re-read (``wal_level`` lives in
  ``postgresql.auto.conf``, not in the service's ``--config-options``).
- backend app ``<product>``: ``postgres:link``-ed (``DATABASE_URL``), ``SECRET_KEY`` (86 random
  url-safe characters: its base64 is longer than 76 columns, the length at which GNU ``base64``
  wraps), and at the end ``POWERSYNC_URL=https://<domain>`` (set only if it differs, like the
  script). The backend is never deployed (no image), so that write restarts nothing.
- PowerSync app ``<product>-powersync``: ``ports:set http:80:8080``, ``resource:limit --memory
  400m``, ``postgres:link <svc> <app> --no-restart`` (after clearing stale ``DATABASE_URL`` /
  ``PS_DATA_SOURCE_URI``, lesson 1), config vars ``NODE_OPTIONS=--max-old-space-size=400``,
  ``PS_SECRET_KEY_B64`` (base64url of ``SECRET_KEY``, no padding, no newlines),
  ``PS_DATA_SOURCE_URI`` (the ``DATABASE_URL`` the link injected, read back with ``config:get``),
  the leftover ``PS_JEEVES_SECRET_KEY_B64`` (same value; an older script's key that the newer
  scripts' best-effort ``config:unset ... || true`` did not remove on every host),
  ``domains:set``, ``git:from-image <app> <image>:1.25.0`` (the plain
  image, by tag: the local stand-in has no registry digest to pin; here the stand-in's own
  repository ``dokku-powersync-test/powersync-service``, never the real name, see
  tests/images/names.py), ``letsencrypt:enable``
  (after the deploy, as the script does).
  - ``config-path`` (the older layout): the config file at
    ``<h.root>/var/lib/dokku/data/storage/<app>/sync-config.yaml`` (written before anything
    else, chowned to 32767 like the script, world-readable so uid 901 reads it),
    ``storage:mount <app> <dir>:/config``, ``POWERSYNC_CONFIG_PATH=/config/sync-config.yaml``;
    no ``POWERSYNC_CONFIG_B64``.
  - ``config-b64``: ``POWERSYNC_CONFIG_B64`` (base64 of the whole file, no newlines) set with a
    plain ``config:set`` before the first deploy (publish-sync-config.sh's bootstrap path: the
    app is not deployed yet, so nothing restarts); no ``POWERSYNC_CONFIG_PATH``. With
    ``inert_mount=True`` the state of a host migrated from the older layout: the file and the
    ``/config`` mount are still there, inert (the B64 var wins), ``POWERSYNC_CONFIG_PATH`` gone.

The config is Jeeves-shaped: replication from ``!env PS_DATA_SOURCE_URI`` with ``sslmode:
disable`` (no ``slot_name_prefix``, so slots get the default ``powersync_`` prefix), storage
``type: postgresql`` in the SAME database (``uri: !env PS_DATA_SOURCE_URI``), rules inline under
``sync_config.content: |`` (five ``by_user_*`` buckets, each parameter query
``SELECT token_parameters.user_id AS user_id``), ``client_auth`` with ``audience: ["<product>"]``
and one HS256 key ``{kty: oct, alg: HS256, k: !env PS_SECRET_KEY_B64, kid: <product>-dev}``,
``api.port: 8080``. Faithful to Jeeves, it has NO ``api.tokens``: the admin API of this instance
accepts no token at all, so anything adopting it cannot use the admin API until it adds one.

Ports: on Dokku 0.38.27 (and the harness) ``domains:set`` empties the ports map, and the script
runs ``ports:set`` before ``domains:set``, so ONE run of the script deploys with no ports map (the
deploy falls back to the detected map). The script is idempotent and meant to be re-run; its
second run finds no ``80 -> 8080`` mapping and re-sets it, and skips ``domains:set`` (domain
already there). ``script_runs=2`` (default) models that: after the first pass it repeats the
port step, so the end state has ``http:80:8080`` as facts/jeeves-deployment.md describes (the
running container was started before, with the fallback ``PORT``; PowerSync ignores ``PORT``).
TLS (dokku-letsencrypt as tests/harness/certs.py models it): ``letsencrypt:enable`` runs on the
empty map, whose detected fallback ``http:80:5000`` (the image has no ``EXPOSE``) already listens
on 80, so it adds no mapping, and its ``certs:add`` adds no ``https:443`` (Dokku adds one only
beside an ``http:80`` of the map). The second run's ``ports:set http:80:8080`` then leaves the
certificate installed with no https mapping; the first managed publish restores
``https:443:8080``.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker

from powersync_plugin.core.derive import sign_hs256
from tests.images.names import STANDIN_IMAGE

IMAGE = STANDIN_IMAGE
LAYOUTS = ("config-b64", "config-path")
CONFIG_PATH_IN_CONTAINER = "/config/sync-config.yaml"
RULES_FILE_NAME = "sync-rules.yaml"  # rules_file=True: beside the config, named by sync_config.path
DOKKU_UID = 32767  # deploy-powersync.sh's default DOKKU_UID for the storage chown

# The backend's migrations: every table the rules read, then the publication over exactly them.
TABLES = {
    "todos": "id text PRIMARY KEY, user_id text NOT NULL, title text, done boolean DEFAULT false",
    "tags": "id text PRIMARY KEY, user_id text NOT NULL, name text",
    "todo_tags": "id text PRIMARY KEY, todo_id text NOT NULL, tag_id text NOT NULL, user_id text NOT NULL",
    "projects": "id text PRIMARY KEY, user_id text NOT NULL, name text",
    "reminders": "id text PRIMARY KEY, todo_id text NOT NULL, user_id text NOT NULL, remind_at timestamptz",
}

RULES = """bucket_definitions:
  by_user_todos:
    parameters:
      - SELECT token_parameters.user_id AS user_id
    data:
      - SELECT * FROM todos WHERE user_id = bucket.user_id

  by_user_tags:
    parameters:
      - SELECT token_parameters.user_id AS user_id
    data:
      - SELECT * FROM tags WHERE user_id = bucket.user_id

  by_user_todo_tags:
    parameters:
      - SELECT token_parameters.user_id AS user_id
    data:
      - SELECT id, todo_id, tag_id, user_id FROM todo_tags WHERE user_id = bucket.user_id

  by_user_projects:
    parameters:
      - SELECT token_parameters.user_id AS user_id
    data:
      - SELECT * FROM projects WHERE user_id = bucket.user_id

  by_user_reminders:
    parameters:
      - SELECT token_parameters.user_id AS user_id
    data:
      - SELECT * FROM reminders WHERE user_id = bucket.user_id
"""


def render_config(product: str, rules: str = RULES, rules_path: str | None = None, old_key: bool = False) -> str:
    """The Jeeves config file for ``product``; ``rules`` lands byte for byte in sync_config.content,
    or, with ``rules_path``, the config names that file (``sync_config.path``) instead."""
    assert rules.endswith("\n") and not rules.endswith("\n\n"), "block scalar (clip) keeps one newline"
    sync_config = (
        f"sync_config:\n  path: {rules_path}\n" if rules_path
        else "sync_config:\n  content: |\n" + textwrap.indent(rules, "    ")
    )
    return (
        "# PowerSync Service configuration (Jeeves-shaped, reproduced for the test bed).\n"
        "#\n"
        "# Top-level keys are read by PowerSync; only the sync rules live under\n"
        "# sync_config.content (a string the service parses as its own YAML document).\n"
        "\n"
        "# --- Replication source ---\n"
        "replication:\n"
        "  connections:\n"
        "    - type: postgresql\n"
        "      # The same Postgres database the backend uses.\n"
        "      uri: !env PS_DATA_SOURCE_URI\n"
        "      sslmode: disable\n"
        "\n"
        "# --- Sync rules ---\n"
        + sync_config
        + "\n"
        "# --- Client auth: JWTs the backend signs with its SECRET_KEY ---\n"
        "client_auth:\n"
        f'  audience: ["{product}"]\n'
        "  jwks:\n"
        "    keys:\n"
        "      - kty: oct\n"
        "        alg: HS256\n"
        "        k: !env PS_SECRET_KEY_B64\n"
        f"        kid: {product}-dev\n"
        + (f"      - kty: oct\n        alg: HS256\n        k: !env PS_OLD_SECRET_KEY_B64\n        kid: {product}-old\n"
           if old_key else "")
        + "\n"
        "# --- Bucket storage: the same database, no MongoDB ---\n"
        "storage:\n"
        "  type: postgresql\n"
        "  uri: !env PS_DATA_SOURCE_URI\n"
        "  sslmode: disable\n"
        "\n"
        "# --- API server ---\n"
        "api:\n"
        "  port: 8080\n"
    )


def b64url_nopad(value: str) -> str:
    """``printf '%s' "$SECRET_KEY" | base64 | tr -d '\\n=' | tr '/+' '_-'``."""
    return base64.b64encode(value.encode()).decode().replace("\n", "").rstrip("=").translate(str.maketrans("/+", "_-"))


def _exec_node(container: str, script: str, *args: str) -> dict:
    result = docker.from_env().containers.get(container).exec_run(["node", "-e", script, *args])
    return json.loads(result.output.decode())


_READINESS = (
    "fetch('http://127.0.0.1:8080/probes/readiness',{redirect:'manual'}).then(async r=>"
    "process.stdout.write(JSON.stringify({status:r.status,body:(await r.text()).slice(0,300)})))"
    ".catch(e=>process.stdout.write(JSON.stringify({status:0,body:String(e)})))"
)
_SYNC_STREAM = (
    "fetch('http://127.0.0.1:8080/sync/stream',{method:'POST',headers:{Authorization:'Token '+process.argv[1],"
    "'Content-Type':'application/json'},body:'{}'}).then(async r=>{const t=await r.text();"
    "process.stdout.write(JSON.stringify({status:r.status,body:t.slice(0,500)}))})"
    ".catch(e=>process.stdout.write(JSON.stringify({status:0,body:String(e)})))"
)


def readiness_status(app: str) -> int:
    """Status of GET /probes/readiness from inside ``<app>.web.1`` (0: no answer)."""
    try:
        return int(_exec_node(f"{app}.web.1", _READINESS)["status"])
    except Exception:  # container missing, restarting, node not answering yet
        return 0


def replication_slots(h, service: str) -> list[str]:
    """Names in pg_replication_slots of the service, through ``postgres:connect``."""
    result = h.run("postgres:connect", service,
                   input="\\pset tuples_only on\nSELECT slot_name FROM pg_replication_slots ORDER BY 1;\n")
    assert result.returncode == 0, result.stdout + result.stderr
    return [line.strip() for line in result.stdout.splitlines()
            if line.strip() and not line.startswith("Tuples")]


@dataclass
class JeevesDeployment:
    h: object = field(repr=False)
    product: str
    backend_app: str
    powersync_app: str
    service: str
    secret_key: str = field(repr=False)
    kid: str
    audience: str
    domain: str
    layout: str
    rules: str = field(repr=False)
    config_yaml: str = field(repr=False)
    image: str = IMAGE
    config_dir: Path | None = None  # host directory mounted at /config (config-path, inert_mount)
    old_secret: str | None = field(default=None, repr=False)  # old_key=True: signs kid <product>-old
    slots: list[str] = field(default_factory=list)

    @property
    def powersync_url(self) -> str:
        return f"https://{self.domain}"

    def token(self, ttl: int = 300, *, user_id: str = "user-1", kid: str | None = None,
              audience: str | None = None, secret: str | None = None) -> str:
        """An HS256 JWT exactly as the backend signs it: raw SECRET_KEY bytes, header kid
        ``<product>-dev``, claims sub, aud, user_id, iat, exp (``ttl`` seconds). The keyword
        overrides exist to build wrong tokens (kid/audience/secret)."""
        now = int(time.time())
        claims = {"sub": user_id, "aud": audience or self.audience, "user_id": user_id, "iat": now, "exp": now + ttl}
        return sign_hs256((secret or self.secret_key).encode(), claims, kid or self.kid)

    def sync_status(self, token: str) -> tuple[int, str]:
        """A client's POST /sync/stream, made from inside ``<app>.web.1``: (status, first 500 chars)."""
        parsed = _exec_node(f"{self.powersync_app}.web.1", _SYNC_STREAM, token)
        return parsed["status"], parsed["body"]

    def readiness(self) -> int:
        return readiness_status(self.powersync_app)

    def current_slots(self) -> list[str]:
        return replication_slots(self.h, self.service)


def _ok(result, what: str) -> str:
    assert result.returncode == 0, f"{what} failed (rc {result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _wal_level(h, service: str) -> str:
    out = h.run("postgres:connect", service, input="SHOW wal_level;\n").stdout
    for line in out.splitlines():
        if line.strip() in ("minimal", "replica", "logical"):
            return line.strip()
    return ""


def wait_ready(app: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    status = 0
    while time.time() < deadline:
        status = readiness_status(app)
        if 200 <= status < 300:
            return
        time.sleep(0.5)
    logs = ""
    try:
        logs = docker.from_env().containers.get(f"{app}.web.1").logs(tail=40).decode(errors="replace")
    except Exception:
        pass
    raise AssertionError(f"{app}: /probes/readiness never turned 2xx (last {status})\n{logs}")


def _ports_step(h, app: str) -> None:
    """Step [2]'s port check: ``ports:list`` shows no http 80 -> 8080 line -> ``ports:set``."""
    listed = h.run("ports:list", app)
    rows = [line.split() for line in listed.stdout.splitlines()]
    if listed.returncode != 0 or ["http", "80", "8080"] not in rows:
        _ok(h.run("ports:set", app, "http:80:8080"), "ports:set")


def deploy_jeeves(h, layout: str, product: str | None = None, *, inert_mount: bool = False,
                  rules: str = RULES, image: str = IMAGE, script_runs: int = 2,
                  rules_file: bool = False, old_key: bool = False, service: str | None = None) -> JeevesDeployment:
    """Reproduce the Jeeves scripts' end state for ``product`` (default ``jv<6 hex>``) on harness ``h``.

    ``layout``: ``"config-b64"`` (POWERSYNC_CONFIG_B64) or ``"config-path"`` (file on a storage
    mount, POWERSYNC_CONFIG_PATH). ``inert_mount`` (config-b64 only): also leave the older
    layout's file and ``/config`` mount behind, as a migrated host has them. ``script_runs``:
    2 (default) ends with the ports map ``http:80:8080``; 1 leaves it empty (domains:set trap).
    ``service``: the dokku-postgres service's name (default ``product``; dokku-postgres also
    allows ``_`` and upper case, which app names do not). ``rules``: the sync rules to embed
    (must end with exactly one newline). Returns once the
    instance is ready, still running, and its replication slot exists on the source.
    See the module docstring for every command and the resulting state.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if inert_mount and layout != "config-b64":
        raise ValueError("inert_mount only applies to the config-b64 layout")
    if rules_file and layout != "config-path":
        raise ValueError("rules_file (sync_config.path beside the config file) needs the config-path layout")
    if script_runs not in (1, 2):
        raise ValueError("script_runs must be 1 or 2")
    product = product or f"jv{uuid.uuid4().hex[:6]}"
    backend, app, service = product, f"{product}-powersync", service or product
    domain = f"powersync.{product}.example.test"
    secret_key = secrets.token_urlsafe(64)  # 86 chars; its base64 is 116 chars (> 76: GNU wraps)
    config_yaml = render_config(product, rules, RULES_FILE_NAME if rules_file else None, old_key)
    old_secret = secrets.token_urlsafe(48) if old_key else None  # a key being rotated out, kid <product>-old
    uses_mount = layout == "config-path" or inert_mount

    # --- The backend, as it exists before the PowerSync scripts run ---------------------------
    _ok(h.run("postgres:create", service), "postgres:create")
    _ok(h.run("apps:create", backend), "apps:create backend")
    _ok(h.run("postgres:link", service, backend), "postgres:link backend")
    _ok(h.run("config:set", "--no-restart", backend, f"SECRET_KEY={secret_key}"), "config:set SECRET_KEY")
    migrations = "".join(f"CREATE TABLE {name} ({columns});\n" for name, columns in TABLES.items())
    migrations += f"CREATE PUBLICATION powersync FOR TABLE {', '.join(TABLES)};\n"
    _ok(h.run("postgres:connect", service, input=migrations), "backend migrations")

    # --- deploy-powersync.sh ---------------------------------------------------------------------
    config_dir = None
    if uses_mount:  # [1] storage dir + sync-config.yaml, chowned to the dokku UID
        config_dir = Path(h.root) / "var/lib/dokku/data/storage" / app
        config_dir.mkdir(parents=True, exist_ok=True)
        config_file = config_dir / "sync-config.yaml"
        config_file.write_text(config_yaml)
        files = [config_file]
        if rules_file:
            files.append(config_dir / RULES_FILE_NAME)
            files[-1].write_text(rules)
        os.chmod(config_dir, 0o755)
        for path in files:
            os.chmod(path, 0o644)
        for path in (config_dir, *files):
            os.chown(path, DOKKU_UID, DOKKU_UID)

    # [2] app + ports + resource limit
    if h.run("apps:exists", app).returncode != 0:
        _ok(h.run("apps:create", app), "apps:create")
    _ports_step(h, app)
    _ok(h.run("resource:limit", "--memory", "400m", app), "resource:limit")

    # [3] SECRET_KEY and the postgres service, derived from the backend; link it
    backend_secret = _ok(h.run("config:get", backend, "SECRET_KEY"), "config:get SECRET_KEY").strip()
    backend_db_url = _ok(h.run("config:get", backend, "DATABASE_URL"), "config:get DATABASE_URL").strip()
    assert backend_secret == secret_key
    pg_host = backend_db_url.split("@", 1)[1].split("/", 1)[0].split(":", 1)[0]
    # The scripts read the service off this host, which works only for names without `_`
    # (dokku-postgres turns `_` into `-` there): the `service=` variant stands for an operator
    # who named it by hand.
    assert pg_host == "dokku-postgres-" + service.replace("_", "-"), pg_host
    links_line = next((line for line in _ok(h.run("postgres:info", service), "postgres:info").splitlines()
                       if line.strip().startswith("Links:")), "")
    if app not in links_line.split()[1:]:
        h.run("config:unset", "--no-restart", app, "DATABASE_URL", "PS_DATA_SOURCE_URI")
        _ok(h.run("postgres:link", service, app, "--no-restart"), "postgres:link")

    # [4] wal_level=logical: ALTER SYSTEM, postgres:restart, wait, re-read
    if _wal_level(h, service) != "logical":
        _ok(h.run("postgres:connect", service, input="ALTER SYSTEM SET wal_level = logical;\n"), "ALTER SYSTEM")
        _ok(h.run("postgres:restart", service), "postgres:restart")
        deadline = time.time() + 60
        while h.run("postgres:connect", service, input="SELECT 1;\n").returncode != 0:
            assert time.time() < deadline, f"{service} did not come back after postgres:restart"
            time.sleep(1)
        assert _wal_level(h, service) == "logical"

    # [5] env vars (+ the leftover key an older script left behind)
    secret_b64 = b64url_nopad(backend_secret)
    database_url = _ok(h.run("config:get", app, "DATABASE_URL"), "config:get DATABASE_URL").strip()
    assert database_url, "no DATABASE_URL after postgres:link"
    env = [
        "NODE_OPTIONS=--max-old-space-size=400",
        f"PS_SECRET_KEY_B64={secret_b64}",
        f"PS_DATA_SOURCE_URI={database_url}",
        f"PS_JEEVES_SECRET_KEY_B64={secret_b64}",
    ]
    if old_secret:
        env.append(f"PS_OLD_SECRET_KEY_B64={b64url_nopad(old_secret)}")
    if layout == "config-path":
        env.insert(0, f"POWERSYNC_CONFIG_PATH={CONFIG_PATH_IN_CONTAINER}")
    _ok(h.run("config:set", "--no-restart", app, *env), "config:set env")

    # [6] config mount
    if uses_mount:
        _ok(h.run("storage:mount", app, f"{config_dir}:/config"), "storage:mount")

    # publish-sync-config.sh, bootstrap path (not deployed yet: no restart, no probe)
    if layout == "config-b64":
        keys = _ok(h.run("config:keys", app), "config:keys").split()
        config_b64 = base64.b64encode(config_yaml.encode()).decode()
        _ok(h.run("config:set", app, f"POWERSYNC_CONFIG_B64={config_b64}"), "config:set POWERSYNC_CONFIG_B64")
        if "POWERSYNC_CONFIG_PATH" in keys:
            _ok(h.run("config:unset", "--no-restart", app, "POWERSYNC_CONFIG_PATH"), "config:unset")

    # [7] domain, [8] image, [9] Let's Encrypt
    _ok(h.run("domains:set", app, domain), "domains:set")
    deployed = h.run("git:from-image", app, image)
    if deployed.returncode != 0 and "No changes detected" not in deployed.stdout + deployed.stderr:
        raise AssertionError(f"git:from-image failed:\n{deployed.stdout}\n{deployed.stderr}")
    _ok(h.run("letsencrypt:enable", app), "letsencrypt:enable")

    # [10] wire the backend, only when it differs
    url = f"https://{domain}"
    current = h.run("config:get", backend, "POWERSYNC_URL")
    if current.returncode != 0 or current.stdout.strip() != url:
        _ok(h.run("config:set", backend, f"POWERSYNC_URL={url}"), "config:set POWERSYNC_URL")

    # The script's idempotent second run: only the port step changes anything (see module doc).
    if script_runs >= 2:
        _ports_step(h, app)

    # [11] ready, still up, and replicating (its slot exists on the source)
    wait_ready(app)
    deadline = time.time() + 60
    slots = replication_slots(h, service)
    while not slots and time.time() < deadline:
        time.sleep(1)
        slots = replication_slots(h, service)
    assert slots, f"no replication slot on {service} after {app} started"
    container = docker.from_env().containers.get(f"{app}.web.1")
    assert container.status == "running", f"{app}.web.1 is {container.status}"
    assert 200 <= readiness_status(app) < 300

    return JeevesDeployment(
        h=h, product=product, backend_app=backend, powersync_app=app, service=service,
        secret_key=secret_key, kid=f"{product}-dev", audience=product, domain=domain, layout=layout,
        rules=rules, config_yaml=config_yaml, image=image, config_dir=config_dir, slots=slots,
        old_secret=old_secret,
    )
