"""dokku-postgres 1.48 emulation (facts: dokku-transcripts.md "postgres:*", "Cleanup").

Service ``SVC``: container ``dokku.postgres.SVC`` (labels ``dokku=service``,
``dokku.service=postgres``, ``--restart=always``) from ``dokku-powersync-test/postgres:15``
(override: env ``POSTGRES_IMAGE`` [+ ``POSTGRES_IMAGE_VERSION``], ``HARNESS_POSTGRES_IMAGE``, or
``--image``/``--image-version``), ``POSTGRES_PASSWORD`` a random 32-hex password, database
``SVC`` with ``-`` -> ``_``. Names as dokku-postgres 1.48.0's ``common-functions`` has them:
``is_valid_service_name`` accepts ``[A-Za-z0-9_-]+`` (upper case and ``_`` included, ``.`` not);
the DSN host / link alias is ``service_dns_hostname``, ``dokku.postgres.SVC`` with ``.`` and
``_`` -> ``-`` (``acce_u`` is reached at ``dokku-postgres-acce-u``, case kept), so a service
cannot be told from its DSN host; ``postgres:app-links APP`` (``service_app_links``) prints the
services whose LINKS file holds APP, one a line, no header. ``-c/--config-options "-c wal_level=logical"`` is passed as the
server's arguments (``postgres -c ...``), as dokku-postgres passes CONFIG_OPTIONS after the image.

Notes (each says where it differs from the real plugin):
- data lives in a Docker volume ``dokku-harness-<hash>-postgres-SVC``, not a bind mount of
  ``/var/lib/dokku/services/postgres/SVC/data`` (the path is still reported by ``postgres:info``);
- ``postgres:link`` uses Docker legacy links (``--link dokku.postgres.SVC:dokku-postgres-SVC``)
  exactly like the real plugin: app containers and the service share the default bridge;
- no SSL setup ("Securing connection to database" is printed only), no ``expose``, no backups;
- ``link`` decides "already linked" and ``unlink`` decides "linked" by grepping every config
  value of the app for the DSN (as dokku-postgres's service_link/service_unlink do): a var
  holding the DSN without a real link blocks ``link`` and is deleted by ``unlink``; the LINKS
  file is updated but not consulted. The alternative alias (``DATABASE_URL`` taken) is the first
  free ``DOKKU_POSTGRES_<COLOR>_URL`` instead of a random colour;
- ``postgres:restart`` does not wait for the server to accept connections (neither does the
  real one: 0.67 s).

Triggers emulated under the plugin name ``postgres``: ``pre-delete APP`` (APP leaves every
LINKS file) and ``post-app-rename-setup`` / ``post-app-clone-setup OLD NEW`` (NEW is added to
every LINKS file holding OLD), as dokku-postgres's ``pre-delete``, ``post-app-rename-setup`` and
``post-app-clone-setup`` scripts do. Since ``apps:rename`` runs its setup step before destroying
OLD, the renamed app stays linked.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

from . import calllog, state, triggers
from .config import set_config, unset_config
from .deploy import docker, harness_labels, inspect
from .output import (APP_MISSING_EXIT, DokkuExit, err, fail, info1, info2, out, quiet, verbose, warn)
from .paths import chown_dokku, layout

DEFAULT_IMAGE = "dokku-powersync-test/postgres:15"
INFO_FLAGS = ["config-dir", "config-options", "data-dir", "dsn", "exposed-ports", "id", "internal-ip",
              "initial-network", "links", "post-create-network", "post-start-network", "service-root",
              "status", "version"]
COLORS = ["AQUA", "BLACK", "BLUE", "FUCHSIA", "GRAY", "GREEN", "LIME", "MAROON", "NAVY", "OLIVE",
          "PURPLE", "RED", "SILVER", "TEAL", "WHITE", "YELLOW"]
NAME_RULE = "Please specify a valid name for the service. Valid characters are: [A-Za-z0-9_]+"


def container_name(svc: str) -> str:
    return f"dokku.postgres.{svc}"


def alias_host(svc: str) -> str:
    """dokku-postgres's service_alias: the container name with ``.`` and ``_`` turned into ``-``."""
    return container_name(svc).replace(".", "-").replace("_", "-")


def service_dir(svc: str):
    return layout().postgres / svc


def volume_name(svc: str) -> str:
    digest = hashlib.sha256(str(layout().root).encode()).hexdigest()[:8]
    return f"dokku-harness-{digest}-postgres-{svc}"


def exists(svc: str) -> bool:
    return bool(svc) and (service_dir(svc) / "PASSWORD").is_file()


def require(svc: str | None) -> str:
    if not svc:
        fail(NAME_RULE)
    if not exists(svc):
        fail(f"Postgres service {svc} does not exist")
    return svc


def _read(svc: str, name: str, default: str = "") -> str:
    try:
        return (service_dir(svc) / name).read_text().strip()
    except FileNotFoundError:
        return default


def _write(svc: str, name: str, value: str) -> None:
    (service_dir(svc) / name).write_text(value + ("\n" if value else ""))


def links(svc: str) -> list[str]:
    return [line for line in _read(svc, "LINKS").splitlines() if line]


def _set_links(svc: str, apps: list[str]) -> None:
    _write(svc, "LINKS", "\n".join(sorted(set(apps))))


def db_name(svc: str) -> str:
    return _read(svc, "DATABASE_NAME") or svc.replace("-", "_").replace(".", "_")


def dsn(svc: str) -> str:
    return f"postgres://postgres:{_read(svc, 'PASSWORD')}@{alias_host(svc)}:5432/{db_name(svc)}"


def list_services() -> list[str]:
    d = layout().postgres
    return sorted(p.name for p in d.iterdir() if (p / "PASSWORD").is_file()) if d.exists() else []


def _psql(svc: str, sql: str, db: str = "postgres") -> subprocess.CompletedProcess:
    env = dict(os.environ, PGPASSWORD=_read(svc, "PASSWORD"))
    return docker("exec", "-i", "-e", "PGPASSWORD", container_name(svc), "psql", "-v", "ON_ERROR_STOP=1",
                  "-h", "localhost", "-U", "postgres", "-tAc", sql, db, env=env)


def wait_ready(svc: str, timeout: float = 90) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = inspect(container_name(svc))
        if not info or not info["State"].get("Running"):
            if info and info["State"].get("Status") == "exited":
                return False
        elif _psql(svc, "SELECT 1").returncode == 0:
            return True
        time.sleep(0.5)
    return False


def info_values(svc: str) -> dict:
    info = inspect(container_name(svc)) or {}
    root = service_dir(svc)
    linked = links(svc)
    return {
        "config-dir": f"{root}/data", "config-options": _read(svc, "CONFIG_OPTIONS"),
        "data-dir": f"{root}/data", "dsn": dsn(svc), "exposed-ports": "-",
        "id": info.get("Id", ""),
        "internal-ip": (info.get("NetworkSettings") or {}).get("IPAddress", ""),
        "initial-network": "", "links": (" ".join(linked) + " ") if linked else "-",
        "post-create-network": "", "post-start-network": "", "service-root": str(root),
        "status": (info.get("State") or {}).get("Status", "missing"),
        "version": _read(svc, "IMAGE"),
    }


def print_info(svc: str, flag: str | None = None) -> None:
    values = info_values(svc)
    if flag is not None:
        key = flag[2:]
        if key not in values:
            fail("Invalid flag passed, valid flags: " + " ".join(f"--{k}" for k in INFO_FLAGS))
        out(values[key])
        return
    if not quiet():
        info2(f"{svc} postgres service information")
    for key in INFO_FLAGS:
        label = (key.replace("-", " ").capitalize() + ":")
        if key == "dsn":
            label = "Dsn:"
        verbose(f"{label.ljust(20)} {values[key].ljust(25)}")


def _confirm(name: str) -> None:
    warn("WARNING: Potentially Destructive Action")
    warn(f"This command will destroy {name} Postgres service.")
    warn(f'To proceed, type "{name}"')
    out("> ", end="")
    line = sys.stdin.readline()
    if not line:
        fail("EOF")
    if line.strip() != name:
        fail(f"Confirmation did not match {name}. Aborted.")


def _opts(args, values, bools=()):
    flags, pos = {}, []
    i = 0
    while i < len(args):
        a = args[i]
        if a in bools:
            flags[bools[a]] = True
        elif a in values:
            flags[values[a]] = args[i + 1] if i + 1 < len(args) else ""
            i += 1
        else:
            pos.append(a)
        i += 1
    return flags, pos


# ---- commands ---------------------------------------------------------------------------------

def create(args):
    flags, pos = _opts(args, {"-c": "config", "--config-options": "config", "-i": "image", "--image": "image",
                              "-I": "version", "--image-version": "version", "-p": "password",
                              "--password": "password", "-m": "memory", "--memory": "memory",
                              "-s": "shm", "--shm-size": "shm", "-C": "env", "--custom-env": "env"})
    svc = pos[0] if pos else ""
    # dokku-postgres's is_valid_service_name: `-` is allowed though the message omits it; `.` is not
    if not svc or not re.fullmatch(r"[A-Za-z0-9_-]+", svc):
        fail(NAME_RULE)
    if exists(svc):
        fail(f"Postgres service {svc} already exists")
    default = os.environ.get("HARNESS_POSTGRES_IMAGE") or DEFAULT_IMAGE
    if os.environ.get("POSTGRES_IMAGE"):
        default = os.environ["POSTGRES_IMAGE"] + ":" + os.environ.get("POSTGRES_IMAGE_VERSION", "latest")
    repo, _, tag = default.rpartition(":")
    image = f"{flags.get('image', repo)}:{flags.get('version', tag)}"
    if docker("image", "inspect", image).returncode != 0:
        warn("POSTGRES_DISABLE_PULL environment variable detected. Not running pull command.")
        warn(f"   docker image pull {image}")
        fail("Postgres service creation failed")
    password = flags.get("password") or os.urandom(16).hex()
    d = service_dir(svc)
    d.mkdir(parents=True, exist_ok=True)
    (d / "data").mkdir(exist_ok=True)
    _write(svc, "IMAGE", image)
    _write(svc, "DATABASE_NAME", svc.replace("-", "_").replace(".", "_"))
    _write(svc, "CONFIG_OPTIONS", flags.get("config", ""))
    _write(svc, "LINKS", "")
    _write(svc, "PASSWORD", password)
    chown_dokku(d)
    server_args = shlex.split(flags.get("config", ""))
    if server_args and server_args[0].startswith("-"):
        server_args = ["postgres", *server_args]
    env = dict(os.environ, POSTGRES_PASSWORD=password)
    extra_env = []
    for pair in (flags.get("env") or "").split(";"):
        if "=" in pair:
            k, v = pair.split("=", 1)
            env[k] = v
            extra_env += ["-e", k]
    docker("volume", "create", *harness_labels(), volume_name(svc))
    res = docker("container", "run", "-d", "--name", container_name(svc), "--hostname", container_name(svc),
                 *harness_labels(), "--label", "dokku=service", "--label", "dokku.service=postgres",
                 "--restart=always", "-v", f"{volume_name(svc)}:/var/lib/postgresql/data",
                 "-e", "POSTGRES_PASSWORD", *extra_env,
                 *([f"--memory={flags['memory']}m"] if flags.get("memory") else []),
                 *([f"--shm-size={flags['shm']}"] if flags.get("shm") else []),
                 image, *server_args, env=env)
    if res.returncode != 0:
        err(res.stderr.rstrip())
        raise DokkuExit(2)
    verbose("Waiting for container to be ready")
    if not wait_ready(svc):
        logs = docker("container", "logs", "--tail", "30", container_name(svc))
        err((logs.stdout + logs.stderr).rstrip())
        raise DokkuExit(2)
    verbose("Creating container database")
    created = _psql(svc, f'CREATE DATABASE "{db_name(svc)}"')
    if created.returncode != 0:
        verbose("Already exists")
    verbose("Securing connection to database")
    info2(f"Postgres container created: {svc}")
    print_info(svc)
    return 0


def info(args):
    pos = [a for a in args if not a.startswith("--")]
    flag = next((a for a in args if a.startswith("--")), None)
    svc = require(pos[0] if pos else None)
    print_info(svc, flag)
    return 0


def exists_cmd(args):
    svc = require(args[0] if args else None)
    info1(f"Service {svc} exists")
    return 0


def list_cmd(args):
    services = list_services()
    if not services:
        warn("There are no Postgres services")
        return 0
    if not quiet():
        info2("Postgres services")
    for s in services:
        out(s)
    return 0


def link(args):
    flags, pos = _opts(args, {"-a": "alias", "--alias": "alias", "-q": "query", "--querystring": "query"},
                       bools={"--no-restart": "no_restart", "-n": "no_restart"})
    if len(pos) < 2:
        fail("Please specify an app to run the command on" if pos else NAME_RULE)
    svc, app = pos[0], pos[1]
    require(svc)
    if not state.app_exists(app):
        fail(f"App {app} does not exist", APP_MISSING_EXIT)
    url = dsn(svc)
    env = state.get_config(app)
    holders = sorted(k for k, v in env.items() if url in v)
    if holders:
        fail(f"Already linked as {holders[0]}")
    alias = (flags.get("alias") or "DATABASE").upper().replace("-", "_")
    key = f"{alias}_URL"
    if key in env:
        free = [c for c in COLORS if f"DOKKU_POSTGRES_{c}_URL" not in env]
        key = f"DOKKU_POSTGRES_{(free or COLORS)[0]}_URL"
    option = f"--link {container_name(svc)}:{alias_host(svc)}"
    with state.edit_app(app) as data:
        for phase in ("build", "deploy", "run"):
            if option not in data["docker_options"][phase]:
                data["docker_options"][phase].append(option)
    _set_links(svc, links(svc) + [app])
    value = url + (f"?{flags['query']}" if flags.get("query") else "")
    no_restart = flags.get("no_restart", False)
    rc = set_config(app, {key: value}, restart=not no_restart, reason="postgres:link")
    if no_restart:
        verbose("Skipping restart of linked app")
    return rc


def unlink(args):
    flags, pos = _opts(args, {}, bools={"--no-restart": "no_restart", "-n": "no_restart"})
    if len(pos) < 2:
        fail("Please specify an app to run the command on" if pos else NAME_RULE)
    svc, app = pos[0], pos[1]
    require(svc)
    if not state.app_exists(app):
        fail(f"App {app} does not exist", APP_MISSING_EXIT)
    url = dsn(svc)
    holders = sorted(k for k, v in state.get_config(app).items() if url in v)
    if not holders:  # decided by the app's config, not the LINKS file (dokku-postgres service_unlink)
        fail(f"Not linked to app {app}")
    option = f"--link {container_name(svc)}:{alias_host(svc)}"
    with state.edit_app(app) as data:
        for phase in ("build", "deploy", "run"):
            data["docker_options"][phase] = [o for o in data["docker_options"][phase] if o != option]
    _set_links(svc, [a for a in links(svc) if a != app])
    no_restart = flags.get("no_restart", False)
    rc = unset_config(app, holders, restart=not no_restart, reason="postgres:unlink")
    if no_restart:
        verbose("Skipping restart of linked app")
    return rc


def linked(args):
    if len(args) < 2:
        fail(NAME_RULE)
    svc, app = require(args[0]), args[1]
    if app in links(svc):
        info1(f"Service {svc} is linked to {app}")
        return 0
    fail(f"Service {svc} is not linked to {app}")


def links_cmd(args):
    svc = require(args[0] if args else None)
    for a in links(svc):
        out(a)
    return 0


def app_links(args):
    if not args:
        fail("Please specify an app to run the command on")
    state.require_app(args[0])
    for svc in list_services():
        if args[0] in links(svc):
            out(svc)
    return 0


def connect(args):
    svc = require(args[0] if args else None)
    env = dict(os.environ, PGPASSWORD=_read(svc, "PASSWORD"))
    tty = ["-t"] if sys.stdin.isatty() else []
    # Piped SQL is read here and handed on unchanged (psql sees the same bytes), so the call log
    # can say what ran: a dry run may only read.
    script = None if tty else sys.stdin.read()
    if script is not None:
        calllog.note_stdin(script)
    sys.stdout.flush()
    res = subprocess.run(["docker", "exec", "-i", *tty, "-e", "PGPASSWORD", container_name(svc), "psql",
                          "-v", "ON_ERROR_STOP=1", "-h", "localhost", "-U", "postgres", db_name(svc)], env=env,
                         input=script, text=script is not None)
    return res.returncode


def enter(args):
    svc = require(args[0] if args else None)
    info1("Filesystem changes may not persist after container restarts")
    sys.stdout.flush()
    tty = ["-t"] if sys.stdin.isatty() else []
    cmd = args[1:] or ["bash"]
    return subprocess.run(["docker", "exec", "-i", *tty, container_name(svc), *cmd]).returncode


def restart(args):
    svc = require(args[0] if args else None)
    info2("Pausing container")
    docker("container", "stop", container_name(svc))
    verbose("Container paused")
    info2("Starting container")
    docker("container", "start", container_name(svc))
    info2("Container started")
    info1("Please call dokku ps:restart on all linked apps")
    return 0


def stop(args):
    svc = require(args[0] if args else None)
    info2("Stopping container")
    docker("container", "stop", container_name(svc))
    verbose("Container stopped")
    return 0


def start(args):
    svc = require(args[0] if args else None)
    info2("Starting container")
    docker("container", "start", container_name(svc))
    verbose("Waiting for container to be ready")
    wait_ready(svc)
    info2("Container started")
    return 0


def destroy(args):
    flags, pos = _opts(args, {}, bools={"-f": "force", "--force": "force"})
    svc = require(pos[0] if pos else None)
    if links(svc):
        fail("Cannot delete linked service")
    if not flags.get("force") and os.environ.get("DOKKU_APPS_FORCE_DELETE") != "1":
        _confirm(svc)
    info2(f"Deleting {svc}")
    info2("Pausing container")
    docker("container", "stop", container_name(svc))
    verbose("Container paused")
    verbose("Removing container")
    docker("container", "rm", "-f", container_name(svc))
    verbose("Removing data")
    docker("volume", "rm", "-f", volume_name(svc))
    shutil.rmtree(service_dir(svc), ignore_errors=True)
    info2(f"Postgres container deleted: {svc}")
    return 0


@triggers.builtin("pre-delete", "postgres")
def pre_delete(args):
    app = args[0] if args else ""
    for svc in list_services():
        verbose(f"Unlinking from {svc}")
        if app in links(svc):
            _set_links(svc, [a for a in links(svc) if a != app])
    return 0


@triggers.builtin("post-app-rename-setup", "postgres")
@triggers.builtin("post-app-clone-setup", "postgres")
def post_app_setup(args):
    """dokku-postgres's post-app-rename-setup / post-app-clone-setup: every service whose LINKS
    holds OLD gets NEW added (OLD is not removed here: on a rename the ``pre-delete OLD`` of the
    destroy step removes it, leaving NEW linked). The link's other halves, ``DATABASE_URL`` and
    the ``--link`` docker option, reach NEW with the env and docker-options copies."""
    if len(args) < 2:
        return 0
    old, new = args[0], args[1]
    for svc in list_services():
        if old in links(svc):
            _set_links(svc, links(svc) + [new])
    return 0


HELP = [
    ("postgres:app-links <app>", "list all postgres service links for a given app"),
    ("postgres:connect <service>", "connect to the service via the postgres connection tool"),
    ("postgres:create <service> [--create-flags...]", "create a postgres service"),
    ("postgres:destroy <service> [-f|--force]", "delete the postgres service/data/container if there are no links left"),
    ("postgres:enter <service>", "enter or run a command in a running postgres service container"),
    ("postgres:exists <service>", "check if the postgres service exists"),
    ("postgres:info <service> [--single-info-flag]", "print the service information"),
    ("postgres:link <service> <app> [--link-flags...]", "link the postgres service to the app"),
    ("postgres:linked <service> <app>", "check if the postgres service is linked to an app"),
    ("postgres:links <service>", "list all apps linked to the postgres service"),
    ("postgres:list", "list all postgres services"),
    ("postgres:restart <service>", "graceful shutdown and restart of the postgres service container"),
    ("postgres:start <service>", "start a previously stopped postgres service"),
    ("postgres:stop <service>", "stop a running postgres service"),
    ("postgres:unlink <service> <app>", "unlink the postgres service from the app"),
]

COMMANDS = {
    "postgres:create": create, "postgres:info": info, "postgres:exists": exists_cmd,
    "postgres:list": list_cmd, "postgres:link": link, "postgres:unlink": unlink,
    "postgres:linked": linked, "postgres:links": links_cmd, "postgres:app-links": app_links,
    "postgres:connect": connect, "postgres:enter": enter, "postgres:restart": restart,
    "postgres:stop": stop, "postgres:start": start, "postgres:destroy": destroy,
}
