"""Issue 10, item 5: a dry run changes nothing, anywhere.

On a real host `powersync:link ... --configure-source --dry-run` ran ALTER SYSTEM and restarted
the dokku-postgres service (real-host findings §5), and `reconcile --dry-run` pulled and built
images. Here every command's `--dry-run` runs against instances in realistic states with Docker
behind the harness's logging proxy (tests/harness/dockerproxy.py), and the test asserts, from
the Dokku call log and the proxy's request log, that only reads were made, and that the world
(journal, configs, ports, images, containers, the source's settings) is exactly as before.
"""
from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from tests.e2e.conftest import RULES, RULES_2, create_instance, make_backend, make_source, unique
from tests.e2e.jeeves import deploy_jeeves
from tests.harness.dockerproxy import DockerProxy
from tests.harness.paths import ROOT_LABEL
from tests.images.names import STANDIN_IMAGE, STANDIN_REPO

# Dokku commands that only read, besides every `X:report` and `X:info` (Dokku's report and info
# subcommands print properties and change nothing). postgres:connect is read-only only for the
# SQL it is fed (below).
READ_ONLY_DOKKU = {
    "apps:exists", "apps:list", "config:export", "config:keys", "config:get", "config:show",
    "letsencrypt:active", "letsencrypt:list", "postgres:exists", "postgres:links", "postgres:app-links",
    "postgres:list", "storage:list", "docker-options:list",
}


def read_only_dokku(argv: list[str]) -> bool:
    return argv[0] in READ_ONLY_DOKKU or argv[0].endswith((":report", ":info"))


def access_question(call: dict) -> bool:
    """`plugn trigger user-auth ...`: the access question Dokku asks before every command (the
    plugin asks it about the backend). The answer is an exit code; dokku-acl writes nothing."""
    return call["tool"] == "plugn" and call["argv"][:2] == ["trigger", "user-auth"]
# Calls into a function that writes, even from a SELECT.
_WRITING_FUNCTIONS = re.compile(
    r"\b(pg_drop_\w+|pg_create_\w+|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_switch_wal|"
    r"pg_replication_slot_advance|pg_replication_origin_\w+|pg_logical_slot_get_\w+|pg_promote|set_config|"
    r"nextval|setval|pg_advisory\w*|lo_\w+|dblink\w*)\s*\(",
    re.IGNORECASE,
)
# psql meta-commands that only set client-side variables or how results print (\o, \copy, \!
# could write).
_OUTPUT_META = {"\\pset", "\\set", "\\t", "\\a", "\\x", "\\f"}


def read_only_sql(sql: str | None) -> bool:
    """SELECT/SHOW statements that call no writing function and lock or store nothing."""
    if sql is None:  # an interactive session: anything could have been typed
        return False
    statements = []
    for line in sql.splitlines():
        if line.strip().startswith("\\"):
            if line.strip().split()[0] not in _OUTPUT_META:
                return False
            continue
        statements.append(line)
    for statement in "\n".join(statements).split(";"):
        statement = statement.strip()
        if not statement:
            continue
        if not re.match(r"(SELECT|SHOW)\b", statement, re.IGNORECASE):
            return False
        if _WRITING_FUNCTIONS.search(statement) or re.search(r"\bINTO\b|\bFOR\s+(NO\s+KEY\s+)?(UPDATE|SHARE|KEY)\b", statement, re.IGNORECASE):
            return False
    return True


def read_only_docker(request: dict) -> bool:
    method, path = request["method"], re.sub(r"^/v[0-9.]+", "", request["path"].split("?", 1)[0])
    if method in ("GET", "HEAD"):
        return True
    if method == "POST" and re.fullmatch(r"/containers/[^/]+/exec", path):
        # Creating an exec runs nothing yet; what it runs is judged by its program: `node` is the
        # plugin's in-container HTTP client (readiness, rules validation, reading a config file),
        # `psql` is postgres:connect's `docker exec` (its SQL is judged in the Dokku call log).
        return request.get("exec") in ("node", "psql")
    if method == "POST" and re.fullmatch(r"/exec/[^/]+/start", path):
        return True  # starts the exec created just before, judged above
    return False  # image pull/build/tag, container create/start/stop/restart/kill/remove, ...


def journal_digest(h) -> dict:
    path = Path(h.root) / "var/lib/dokku/services/powersync/journal.sqlite3"
    with closing(sqlite3.connect(path)) as connection:
        head = connection.execute("SELECT count(*), max(sequence) FROM events").fetchone()
        rows = connection.execute("SELECT * FROM events ORDER BY sequence").fetchall()
        summaries = connection.execute("SELECT * FROM summaries ORDER BY 1").fetchall()
    # Digests, not rows: rows hold API tokens, which must not reach a failure message.
    return {"head": head, "events": _digest(rows), "summaries": _digest(summaries)}


def _digest(value) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def docker_lines(*args: str) -> list[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return sorted(line for line in result.stdout.splitlines() if line)


def psql(h, service: str, sql: str) -> str:
    result = h.run("postgres:connect", service, input="\\pset tuples_only on\n\\pset format unaligned\n" + sql)
    assert result.returncode == 0, result.stderr
    return "\n".join(line for line in result.stdout.splitlines() if not line.startswith(("Tuples", "Output")))


def world(h, apps: list[str], services: list[str]) -> dict:
    """Everything a dry run must leave exactly as it was (read with the harness's own means)."""
    label = f"label={ROOT_LABEL}={h.root}"
    return {
        "journal": journal_digest(h),
        "configs": {app: {key: _digest(value) for key, value in h.config(app).items()} for app in apps},
        "ports": {app: h.app_state(app).get("ports") for app in apps},
        "images": docker_lines("images", "-a", "--no-trunc", "--filter", label, "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"),
        "containers": docker_lines("ps", "-a", "--no-trunc", "--filter", label, "--format", "{{.Names}} {{.ID}}"),
        "live": [
            docker_lines("inspect", "-f", "{{.Name}} {{.Id}} {{.State.Running}} {{.State.StartedAt}} {{.RestartCount}}", name)
            for name in [f"{app}.web.1" for app in apps] + [f"dokku.postgres.{svc}" for svc in services]
            if subprocess.run(["docker", "inspect", name], capture_output=True).returncode == 0
        ],
        "source": {
            svc: psql(
                h, svc,
                "SHOW wal_level;\nSELECT name, setting FROM pg_file_settings ORDER BY 1;\n"
                "SELECT slot_name FROM pg_replication_slots ORDER BY 1;\nSELECT datname FROM pg_database ORDER BY 1;\n"
                "SELECT pubname FROM pg_publication ORDER BY 1;\n",
            )
            for svc in services
        },
        "links": {svc: h.run("postgres:info", svc, "--links").stdout for svc in services},
    }


def private_base_image(h) -> str:
    """A base image of this harness's own (labelled, so cleanup removes it and what is built on
    it): its derived tag is this test's alone, so removing it disturbs no other suite."""
    repository = f"dokku-powersync-test/dry-run-{unique('base')}"
    dockerfile = f'FROM {STANDIN_IMAGE}\nLABEL {ROOT_LABEL}="{h.root}"\n'
    subprocess.run(["docker", "build", "-q", "-t", f"{repository}:1.25.0", "-"], input=dockerfile, text=True,
                   capture_output=True, check=True)
    return repository


def test_every_dry_run_changes_nothing_anywhere(harness, source):
    h = harness
    # A linked instance on its own base image, with two rules revisions (for rollback), whose
    # derived image tag is gone (an operator's `docker rmi`): a real run would rebuild it.
    repository = private_base_image(h)
    backend = make_backend(h, source)
    linked = create_instance(h, "--image", repository, "--image-version", "1.25.0")
    assert h.run("powersync:set-rules", linked, input=RULES).returncode == 0
    result = h.run("powersync:link", linked, backend.app)
    assert result.returncode == 0, result.stdout + result.stderr
    assert h.run("powersync:set-rules", linked, input=RULES_2).returncode == 0
    derived = docker_lines("inspect", "-f", '{{index .Config.Labels "com.dokku.powersync.derived-tag"}}', f"{linked}.web.1")[0]
    assert derived.startswith("dokku-powersync/powersync-service:1.25.0-")
    subprocess.run(["docker", "rmi", derived], capture_output=True, check=True)  # untags; the container keeps its image

    # An unlinked instance with rules, and a backend on a source whose wal_level is not logical.
    replica = make_source(h, wal_level="replica")
    replica_backend = make_backend(h, replica)
    unlinked = create_instance(h)
    assert h.run("powersync:set-rules", unlinked, input=RULES).returncode == 0

    # A hand-made PowerSync deployment, for adopt.
    jeeves = deploy_jeeves(h, "config-b64")

    apps = [linked, backend.app, unlinked, replica_backend.app, jeeves.powersync_app, jeeves.backend_app]
    services = [source, replica, jeeves.service]
    dry_runs = [
        (["powersync:create", unique("ps"), "--image", STANDIN_REPO], None),
        (["powersync:set-rules", linked], RULES),
        (["powersync:set-rules", unlinked], RULES_2),
        (["powersync:rollback-rules", linked], None),
        (["powersync:link", unlinked, replica_backend.app, "--configure-source"], None),
        (["powersync:unlink", linked, backend.app], None),
        (["powersync:destroy", unlinked, "--force"], None),
        (["powersync:upgrade", linked, "--image-version", "1.26.0"], None),
        (["powersync:upgrade", linked, "--image", STANDIN_REPO, "--image-version", "1.26.0"], None),
        (["powersync:reconcile", linked], None),
        (["powersync:adopt", jeeves.powersync_app], None),
    ]
    before = world(h, apps, services)
    problems, outputs = [], {}
    with DockerProxy(h.root) as proxy:
        for argv, stdin in dry_runs:
            calls_at, requests_at = len(h.calls()), proxy.mark()
            result = h.run(*argv, "--dry-run", input=stdin, env=proxy.env)
            shown = " ".join(argv) + " --dry-run"
            outputs[argv[0] + (" " + argv[-1] if argv[-1].startswith("--") else "")] = result.stdout
            if result.returncode != 0 or not re.search(r"Plan|Dry run|would|matches its journal", result.stdout):
                problems.append(f"{shown} failed: {result.stdout}{result.stderr}")
            calls = h.calls()[calls_at:]
            writes = [
                call["argv"] for call in calls
                if call["argv"] != argv + ["--dry-run"] and not access_question(call) and not (
                    call["tool"] == "dokku" and (
                        read_only_dokku(call["argv"])
                        or (call["argv"][0] == "postgres:connect" and read_only_sql(call.get("stdin")))
                    )
                )
            ]
            if writes or any(call["deploys"] or any(call["containers"].values()) for call in calls):
                problems.append(f"{shown} ran Dokku commands that write: {writes}")
            requests = proxy.requests()[requests_at:]
            docker_writes = [f"{r['method']} {r['path']} ({r['client']})" for r in requests if not read_only_docker(r)]
            if docker_writes:
                problems.append(f"{shown} made Docker calls that write: {docker_writes}")
        # The proxy saw the plugin's own Docker SDK (not only the harness's docker CLI).
        assert any(r["client"] != "docker" for r in proxy.requests())
    assert not problems, "\n".join(problems)
    # The source's reconfiguration is planned, not done; reconcile compares the derived tag it
    # would build with the running one (the same: nothing to do).
    assert f"~ set wal_level=logical (ALTER SYSTEM) on {replica}" in outputs["powersync:link --configure-source"]
    assert f"~ restart on {replica}" in outputs["powersync:link --configure-source"]
    assert "matches its journal" in outputs["powersync:reconcile"]
    assert world(h, apps, services) == before
