"""The local images behave like the real ones on every path the plugin uses.

Runs real containers (see conftest.py): one postgres per module, a stand-in per test.
"""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
import yaml

from .conftest import (
    AUDIENCE,
    KID,
    PG_IMAGE,
    RULES,
    SECRET,
    STANDIN_IMAGES,
    claims,
    make_jwt,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("ps_images")


def _yaml(cfg: dict) -> str:
    return re.sub(r"'(!env [A-Za-z0-9_:]+)'", r"\1", yaml.safe_dump(cfg, sort_keys=False))


def slot_re(prefix: str, version: int) -> re.Pattern:
    return re.compile(rf"^{re.escape(prefix)}{version}_[0-9a-f]{{4}}$")


def wait_slots(pg, prefix, n=1, timeout=30):
    return wait_for(lambda: (s := pg.slots(prefix)) and len(s) == n and s, timeout, f"{n} slot(s) {prefix}*")


def stop(si, timeout=10) -> int:
    si.container.stop(timeout=timeout)
    return si.wait_exit(timeout)


# ---------------------------------------------------------------------------------- images
@pytest.mark.parametrize("tag", STANDIN_IMAGES)
def test_standin_image_layout(ps_docker, tag):
    img = ps_docker.images.get(tag)
    cfg = img.attrs["Config"]
    assert cfg["WorkingDir"] == "/app"
    assert cfg["User"] == "901"
    assert cfg["Entrypoint"] == ["node", "service/lib/entry.js"]
    assert cfg["Cmd"] == ["start"]
    out = ps_docker.containers.run(
        tag, entrypoint=["node", "-e", "console.log(typeof fetch, require('/app/service/package.json').version, process.getuid())"],
        command=[], remove=True, labels={"dokku-powersync-test": "1"}, network_mode="none")
    assert out.decode().split() == ["function", tag.split(":")[1], "901"]


def test_postgres_image_contract(ps_pg_replica, ps_pg):
    pg = ps_pg_replica
    assert pg.psql("SHOW wal_level") == "replica"
    assert pg.psql("SHOW listen_addresses") == "*"
    # password auth over TCP from another container; trust on localhost (postgres:connect)
    ok = ps_pg.container.exec_run(["psql", "-h", pg.name, "-U", "postgres", "-tAc", "select 42"],
                                  environment={"PGPASSWORD": "testbed-pw"})
    assert ok.exit_code == 0 and ok.output.decode().strip() == "42"
    bad = ps_pg.container.exec_run(["psql", "-h", pg.name, "-U", "postgres", "-tAc", "select 1"],
                                   environment={"PGPASSWORD": "wrong"})
    assert bad.exit_code != 0 and "password authentication failed" in bad.output.decode()
    # ALTER SYSTEM + restart takes effect; data survives the restart
    pg.psql("CREATE TABLE keep_me (x int)")
    pg.psql("ALTER SYSTEM SET wal_level = logical")
    pg.container.restart(timeout=10)
    wait_for(lambda: pg.container.exec_run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "select 1"]).exit_code == 0,
             60, "postgres back")
    assert pg.psql("SHOW wal_level") == "logical"
    assert pg.psql("SELECT count(*) FROM keep_me") == "0"
    pg.psql("ALTER SYSTEM RESET wal_level")
    pg.container.restart(timeout=10)
    wait_for(lambda: pg.container.exec_run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "select 1"]).exit_code == 0,
             60, "postgres back")
    assert pg.psql("SHOW wal_level") == "replica"


def test_postgres_image_env_and_args(ps_docker, ps_network):
    c = ps_docker.containers.run(PG_IMAGE, ["-c", "max_replication_slots=7"], detach=True, labels={"dokku-powersync-test": "1"},
                                 environment={"POSTGRES_PASSWORD": "x", "POSTGRES_DB": "appdb"}, network=ps_network.name)
    try:
        wait_for(lambda: c.exec_run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "appdb", "-tAc", "select 1"]).exit_code == 0,
                 60, "postgres ready")
        assert c.exec_run(["psql", "-h", "localhost", "-U", "postgres", "-tAc", "show max_replication_slots"]).output.decode().strip() == "7"
        missing = ps_docker.containers.run(PG_IMAGE, remove=False, detach=True, labels={"dokku-powersync-test": "1"}, network_mode="none")
        try:
            assert missing.wait(timeout=30)["StatusCode"] != 0
            assert "POSTGRES_PASSWORD" in missing.logs().decode()
        finally:
            missing.remove(force=True, v=True)
    finally:
        c.remove(force=True, v=True)


# ---------------------------------------------------------------------------------- start
def test_start_ready_slot_and_admin_api(ps_standin, ps_instance):
    pg, prefix = ps_instance["pg"], ps_instance["prefix"]
    si = ps_standin(ps_instance["config"])
    si.wait_ready()
    for probe in ("startup", "readiness", "liveness"):
        status, body = si.json("GET", f"/probes/{probe}")
        assert status == 200 and body["ready"] is True and body["started"] is True and "touched_at" in body
    [slot] = wait_slots(pg, prefix)
    assert slot_re(prefix, 1).match(slot)
    assert pg.psql(f"SELECT plugin FROM pg_replication_slots WHERE slot_name = '{slot}'") == "pgoutput"
    # storage schema
    tables = pg.psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'powersync'",
                     db=ps_instance["storage_db"]).split()
    assert {"locks", "sync_rules", "bucket_data"} <= set(tables)

    # admin API
    assert si.json("POST", "/api/admin/v1/diagnostics")[0] == 401
    assert si.json("POST", "/api/admin/v1/diagnostics", headers={"Authorization": "Bearer nope"})[0] == 401
    wait_for(lambda: si.admin("POST", "/api/admin/v1/diagnostics", body="{}")[1]["data"].get("active_sync_rules"), 20,
             "active rules in diagnostics")
    status, diag = si.admin("POST", "/api/admin/v1/diagnostics", body='{"sync_rules_content": true}')
    assert status == 200
    d = diag["data"]
    assert d["connections"][0]["connected"] is True and d["connections"][0]["errors"] == []
    assert d["active_sync_rules"]["connections"][0]["slot_name"] == slot
    assert d["active_sync_rules"]["content"] == RULES
    assert d.get("deploying_sync_rules") is None

    status, cur = si.admin("GET", "/api/sync-rules/v1/current")
    assert status == 200 and cur["data"]["current"]["content"] == RULES and cur["data"]["next"] is None
    assert cur["data"]["current"]["slot_name"] == slot

    status, val = si.admin("POST", "/api/sync-rules/v1/validate", body=RULES, content_type="application/yaml")
    assert status == 200 and val["valid"] is True
    bad = "bucket_definitions:\n  g:\n    data:\n      - SELECT * FROM a JOIN b ON a.id = b.id\n"
    status, val = si.admin("POST", "/api/sync-rules/v1/validate", body=bad, content_type="application/yaml")
    assert status == 200 and val["valid"] is False
    assert any("Must SELECT from a single table" in e for e in val["errors"])

    status, dep = si.admin("POST", "/api/sync-rules/v1/deploy", body=RULES, content_type="application/yaml")
    assert status == 422 and dep["error"]["code"] == "PSYNC_S4105"
    assert dep["error"]["description"] == "Sync config API disabled"  # routes/endpoints/sync-rules.ts v1.25.0
    status, dep = si.admin("POST", "/api/sync-rules/v1/deploy", body=json.dumps({"content": RULES}))
    assert status == 422 and dep["error"]["code"] == "PSYNC_S4105"

    # Fastify body handling: JSON content type with an empty body, unknown content types
    assert si.admin("POST", "/api/admin/v1/diagnostics")[1]["code"] == "FST_ERR_CTP_EMPTY_JSON_BODY"
    assert si.admin("POST", "/api/sync-rules/v1/validate", body=RULES, content_type="text/x-yaml")[0] == 415
    assert si.admin("POST", "/api/sync-rules/v1/validate", body=RULES, content_type="text/plain")[0] == 400
    assert si.admin("POST", "/api/sync-rules/v1/validate", body=json.dumps({"content": RULES}))[1]["valid"] is True

    assert stop(si) == 0
    assert "Released replication lock" in si.logs()


def test_sync_stream_jwt(ps_standin, ps_instance):
    cfg = ps_instance["config"]
    si = ps_standin(cfg)
    si.wait_ready()
    wait_slots(ps_instance["pg"], ps_instance["prefix"])

    def stream(token):
        hdr = {"Content-Type": "application/json"}
        if token is not None:
            hdr["Authorization"] = f"Token {token}"
        return si.fetch("POST", "/sync/stream", headers=hdr, body="{}")

    status, body = wait_for(lambda: (r := stream(make_jwt(claims()))) and r[0] == 200 and r, 20, "sync stream 200")
    lines = [json.loads(x) for x in body.splitlines() if x]
    assert "checkpoint" in lines[0] and "checkpoint_complete" in lines[1]

    now = int(time.time())
    rejected = {
        "no token": None,
        "wrong kid": make_jwt(claims(), kid="other-kid"),
        "no kid": make_jwt(claims(), kid=None),
        "wrong aud": make_jwt(claims(aud="someone-else")),
        "no aud": make_jwt(claims(aud=None)),
        "no sub": make_jwt(claims(sub=None)),
        "wrong secret": make_jwt(claims(), secret=b"not-the-secret"),
        "expired": make_jwt(claims(iat=now - 600, exp=now - 120)),
        "lifetime over a day": make_jwt(claims(iat=now, exp=now + 86400 + 10)),
        "iat in the future": make_jwt(claims(iat=now + 300, exp=now + 600)),
    }
    for what, token in rejected.items():
        status, body = stream(token)
        assert status == 401, f"{what}: {status} {body}"
        assert json.loads(body)["error"]["code"].startswith("PSYNC_S21"), what
    # within the clock tolerance, list audience, 1 day lifetime
    for token in (make_jwt(claims(exp=now - 30, iat=now - 300)), make_jwt(claims(aud=["x", AUDIENCE])),
                  make_jwt(claims(iat=now, exp=now + 86400))):
        assert stream(token)[0] == 200
    assert si.status() == "running"


def test_jwt_key_selection(ps_standin, ps_instance):
    """kid rules: exact kid selects that key only; keys without kid match any token by signature."""
    second = b"the-second-secret-used-by-a-wildcard-key"
    cfg = ps_instance["config"]
    cfg["client_auth"]["jwks"]["keys"].append(
        {"kty": "oct", "alg": "HS256", "k": base64.urlsafe_b64encode(second).decode().rstrip("=")})
    si = ps_standin(cfg)
    si.wait_ready()
    wait_slots(ps_instance["pg"], ps_instance["prefix"])

    def code(token):
        return si.fetch("POST", "/sync/stream", headers={"Authorization": f"Bearer {token}"}, body="{}")[0]

    wait_for(lambda: code(make_jwt(claims())) == 200, 20, "sync stream 200")
    assert code(make_jwt(claims(), secret=second, kid=None)) == 200   # wildcard key, no kid
    assert code(make_jwt(claims(), secret=second, kid="unknown")) == 200  # unknown kid falls back to wildcard
    assert code(make_jwt(claims(), secret=second, kid=KID)) == 401  # exact kid: only that key
    assert code(make_jwt(claims(), secret=SECRET, kid=None)) == 401  # kid'ed key never matches no-kid token


def test_wrapped_secret_breaks_every_token(ps_standin, ps_instance):
    cfg = ps_instance["config"]
    wrapped = base64.b64encode(SECRET).decode()  # standard alphabet with '=' padding
    si = ps_standin(cfg, env={"PS_SECRET_KEY_B64": wrapped[:40] + "\n" + wrapped[40:]})
    si.wait_ready()
    wait_slots(ps_instance["pg"], ps_instance["prefix"])
    status, body = si.fetch("POST", "/sync/stream", headers={"Authorization": f"Token {make_jwt(claims())}"}, body="{}")
    assert status == 401


# ---------------------------------------------------------------------------------- fatal config
@pytest.mark.parametrize("case", ["env-not-ps", "env-unset", "type-postgres", "uri-driver", "ssl-default", "both-rules", "no-config"])
def test_fatal_config_exits_150(ps_standin, ps_instance, case):
    cfg = ps_instance["config"]
    env = {}
    config_env = "POWERSYNC_CONFIG_B64"
    if case == "env-not-ps":
        cfg["storage"]["uri"] = "!env DATABASE_URL"
        env["DATABASE_URL"] = ps_instance["env"]["PS_STORAGE_URI"]
    elif case == "env-unset":
        cfg["storage"]["uri"] = "!env PS_NOT_SET_ANYWHERE"
    elif case == "type-postgres":
        cfg["replication"]["connections"][0]["type"] = "postgres"
    elif case == "uri-driver":
        env["PS_DATA_SOURCE_URI"] = ps_instance["env"]["PS_DATA_SOURCE_URI"].replace("postgresql://", "postgresql+asyncpg://")
    elif case == "ssl-default":
        del cfg["storage"]["sslmode"]  # verify-full against a server without SSL
    elif case == "both-rules":
        cfg["sync_rules"] = {"content": RULES}
    elif case == "no-config":
        config_env = None
    si = ps_standin(cfg, env=env, config_env=config_env)
    assert si.wait_exit(30) == 150, si.logs()


def test_invalid_rules_exit_1(ps_standin, ps_instance):
    bad = "bucket_definitions:\n  g:\n    data:\n      - SELECT * FROM a JOIN b ON a.id = b.id\n"
    si = ps_standin(ps_instance["config"], env={"POWERSYNC_SYNC_CONFIG_B64": base64.b64encode(bad.encode()).decode()})
    t0 = time.time()
    assert si.wait_exit(30) == 1
    assert time.time() - t0 < 15
    assert "Must SELECT from a single table" in si.logs()
    assert ps_instance["pg"].slots(ps_instance["prefix"]) == []


# ---------------------------------------------------------------------------------- rules versions
def test_running_instance_holds_its_slot_active(ps_standin, ps_instance):
    """As the real service does (a walsender stream): while it runs, its slot is active and
    Postgres refuses to drop it; a clean stop releases it, and the slot keeps being confirmed."""
    pg, prefix = ps_instance["pg"], ps_instance["prefix"]
    si = ps_standin(ps_instance["config"])
    si.wait_ready()
    [slot] = wait_slots(pg, prefix)
    wait_for(lambda: pg.psql(f"SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'") == "t", 20,
             "slot active")
    assert pg.psql(
        f"SELECT backend_type FROM pg_stat_activity WHERE pid = "
        f"(SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{slot}')"
    ) == "walsender"
    dropped = pg.psql(f"SELECT pg_drop_replication_slot('{slot}')", check=False)
    assert f'replication slot "{slot}" is active for PID' in dropped
    pg.psql("CREATE TABLE IF NOT EXISTS standin_wal_filler (n int); INSERT INTO standin_wal_filler SELECT generate_series(1, 1000)")
    target = pg.psql("SELECT pg_current_wal_lsn()")
    wait_for(lambda: pg.psql(
        f"SELECT confirmed_flush_lsn >= '{target}' FROM pg_replication_slots WHERE slot_name = '{slot}'") == "t",
        30, "slot confirmed past the new WAL")
    assert stop(si) == 0
    wait_for(lambda: pg.psql(f"SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'") == "f", 10,
             "slot released")
    pg.psql(f"SELECT pg_drop_replication_slot('{slot}')")
    assert pg.slots(prefix) == []


def test_rules_versions_and_slots(ps_standin, ps_instance):
    pg, prefix = ps_instance["pg"], ps_instance["prefix"]
    cfg = ps_instance["config"]
    si = ps_standin(cfg)
    si.wait_ready()
    [slot1] = wait_slots(pg, prefix)
    assert stop(si) == 0

    # same text: no new version, same slot
    si = ps_standin(cfg)
    si.wait_ready()
    si.wait_log("Sync rules unchanged")
    time.sleep(1)
    assert pg.slots(prefix) == [slot1]
    assert stop(si) == 0

    # one byte of difference (a comment): new version, new slot, old slot dropped
    cfg["sync_config"]["content"] = RULES + "# changed\n"
    si = ps_standin(cfg)
    si.wait_ready()
    [slot2] = wait_for(lambda: (s := pg.slots(prefix)) and s != [slot1] and len(s) == 1 and s, 30, "slot swap")
    assert slot_re(prefix, 2).match(slot2)
    status, cur = si.admin("GET", "/api/sync-rules/v1/current")
    assert cur["data"]["current"]["content"] == RULES + "# changed\n"
    # POWERSYNC_SYNC_CONFIG_B64 overrides the config's rules
    assert stop(si) == 0
    override = RULES.replace("todos", "todos  ")
    si = ps_standin(cfg, env={"POWERSYNC_SYNC_CONFIG_B64": base64.b64encode(override.encode()).decode()})
    si.wait_ready()
    wait_for(lambda: (s := pg.slots(prefix)) and len(s) == 1 and slot_re(prefix, 3).match(s[0]), 30, "slot v3")
    assert si.admin("GET", "/api/sync-rules/v1/current")[1]["data"]["current"]["content"] == override


def test_missing_publication_reported_ready(ps_standin, ps_instance):
    pg = ps_instance["pg"]
    pg.psql("DROP PUBLICATION powersync", db=ps_instance["source_db"])
    si = ps_standin(ps_instance["config"])
    si.wait_ready()
    si.wait_log("Publication 'powersync' does not exist")
    status, diag = si.admin("POST", "/api/admin/v1/diagnostics", body="{}")
    msgs = [e["message"] for e in diag["data"]["connections"][0]["errors"]]
    msgs += [e["message"] for e in (diag["data"].get("deploying_sync_rules") or {}).get("errors", [])]
    assert any("Publication 'powersync' does not exist" in m for m in msgs)
    assert si.fetch("GET", "/probes/readiness")[0] == 200
    assert pg.slots(ps_instance["prefix"]) == []
    # test-connection reports it too
    tc = si.container.client.containers.run(
        si.container.image.tags[0], ["test-connection"], detach=True, labels={"dokku-powersync-test": "1"},
        environment=si.container.attrs["Config"]["Env"], network=list(si.container.attrs["NetworkSettings"]["Networks"])[0])
    try:
        assert tc.wait(timeout=30)["StatusCode"] != 0
        assert "Publication 'powersync' does not exist" in tc.logs().decode()
    finally:
        tc.remove(force=True)


def test_wal_level_replica_reported(ps_standin, ps_instance, ps_pg_replica):
    src = ps_pg_replica.new_database("src")
    ps_pg_replica.psql("CREATE TABLE todos (id text PRIMARY KEY); CREATE PUBLICATION powersync FOR ALL TABLES", db=src)
    si = ps_standin(ps_instance["config"], env={"PS_DATA_SOURCE_URI": ps_pg_replica.uri(src)})
    si.wait_ready()
    si.wait_log("wal_level must be set to 'logical'")
    assert si.fetch("GET", "/probes/readiness")[0] == 200
    assert si.status() == "running"
    tc = ps_standin(ps_instance["config"], env={"PS_DATA_SOURCE_URI": ps_pg_replica.uri(src)}, command=["test-connection"])
    assert tc.wait_exit(30) != 0
    assert "wal_level must be set to 'logical'" in tc.logs()


def test_test_connection_ok(ps_standin, ps_instance):
    tc = ps_standin(ps_instance["config"], command=["test-connection"])
    assert tc.wait_exit(30) == 0, tc.logs()


# ---------------------------------------------------------------------------------- lock / teardown
def test_second_process_stands_by_and_takes_over(ps_standin, ps_instance):
    pg, prefix = ps_instance["pg"], ps_instance["prefix"]
    a = ps_standin(ps_instance["config"])
    a.wait_ready()
    [slot] = wait_slots(pg, prefix)
    a.wait_log("Acquired replication lock")
    b = ps_standin(ps_instance["config"])
    b.wait_ready()
    b.wait_log("PSYNC_S1003")
    assert "Acquired replication lock" not in b.logs()
    # both serve the sync API
    assert b.fetch("POST", "/sync/stream", headers={"Authorization": f"Token {make_jwt(claims())}"}, body="{}")[0] == 200
    t0 = time.time()
    assert stop(a) == 0
    b.wait_log("Acquired replication lock", timeout=15)
    assert time.time() - t0 < 10
    assert pg.slots(prefix) == [slot]


def test_teardown(ps_standin, ps_instance):
    pg, prefix, storage_db = ps_instance["pg"], ps_instance["prefix"], ps_instance["storage_db"]
    cfg = ps_instance["config"]
    si = ps_standin(cfg)
    si.wait_ready()
    wait_slots(pg, prefix)

    no_word = ps_standin(cfg, command=["teardown"])
    assert no_word.wait_exit(30) != 0

    busy = ps_standin(cfg, command=["teardown", "TEARDOWN"])
    assert busy.wait_exit(30) != 0
    assert pg.slots(prefix) != []

    assert stop(si) == 0
    td = ps_standin(cfg, command=["teardown", "TEARDOWN"])
    assert td.wait_exit(60) == 0, td.logs()
    assert pg.slots(prefix) == []
    tables = pg.psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'powersync'", db=storage_db).split()
    assert tables == ["locks"]
    assert pg.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'powersync'", db=storage_db) == "1"
    # the source publication stays
    assert pg.psql("SELECT count(*) FROM pg_publication WHERE pubname = 'powersync'", db=ps_instance["source_db"]) == "1"
    # idempotent
    again = ps_standin(cfg, command=["teardown", "TEARDOWN"])
    assert again.wait_exit(60) == 0, again.logs()


def test_config_precedence(ps_standin, ps_instance):
    # B64 wins over PATH (the path does not exist)
    si = ps_standin(ps_instance["config"], env={"POWERSYNC_CONFIG_PATH": "/does/not/exist.yaml"})
    si.wait_ready()
    # PATH alone, missing file: fatal
    bad = ps_standin(ps_instance["config"], config_env=None, env={"POWERSYNC_CONFIG_PATH": "/does/not/exist.yaml"})
    assert bad.wait_exit(30) == 150


def test_env_number_and_api_port(ps_standin, ps_instance):
    cfg = ps_instance["config"]
    del cfg["port"]
    cfg["api"]["port"] = "!env PS_PORT::number"
    si = ps_standin(cfg, env={"PS_PORT": "8080"})
    si.wait_ready()
    assert si.fetch("GET", "/probes/liveness")[0] == 200


def test_sigterm_is_quick(ps_standin, ps_instance):
    si = ps_standin(ps_instance["config"])
    si.wait_ready()
    wait_slots(ps_instance["pg"], ps_instance["prefix"])
    t0 = time.time()
    si.container.kill(signal="SIGTERM")
    assert si.wait_exit(10) == 0
    assert time.time() - t0 < 5
    # lock released: a new process acquires it right away
    si2 = ps_standin(ps_instance["config"])
    si2.wait_ready()
    si2.wait_log("Acquired replication lock", timeout=10)


def test_config_path_with_relative_rules_path(ps_standin, ps_instance):
    """The older layout: config file mounted at /config, rules in a file next to it."""
    cfg = ps_instance["config"]
    del cfg["sync_config"]
    cfg["sync_rules"] = {"path": "rules.yaml"}  # deprecated key, path relative to the config file
    text = _yaml(cfg)
    si = ps_standin(text, config_env=None, env={"POWERSYNC_CONFIG_PATH": "/config/sync-config.yaml"},
                    files={"/config/sync-config.yaml": text, "/config/rules.yaml": RULES})
    si.wait_ready()
    wait_slots(ps_instance["pg"], ps_instance["prefix"])
    assert si.admin("GET", "/api/sync-rules/v1/current")[1]["data"]["current"]["content"] == RULES


def test_migrate_up_and_test_connection_output(ps_standin, ps_instance):
    pg, storage_db = ps_instance["pg"], ps_instance["storage_db"]
    mig = ps_standin(ps_instance["config"], command=["migrate", "up"])
    assert mig.wait_exit(30) == 0, mig.logs()
    tables = pg.psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'powersync'", db=storage_db).split()
    assert {"locks", "sync_rules"} <= set(tables)
    assert pg.slots(ps_instance["prefix"]) == []  # migrations alone never replicate
    tc = ps_standin(ps_instance["config"], command=["test-connection"])
    assert tc.wait_exit(30) == 0
    assert "Connection succeeded" in tc.logs()


def test_deploy_api_when_rules_not_in_config(ps_standin, ps_instance):
    cfg = ps_instance["config"]
    del cfg["sync_config"]
    si = ps_standin(cfg)
    si.wait_ready()
    assert si.admin("GET", "/api/sync-rules/v1/current")[1]["error"]["code"] == "PSYNC_S4104"
    status, dep = si.admin("POST", "/api/sync-rules/v1/deploy", body=RULES, content_type="application/yaml")
    assert status == 200 and slot_re(ps_instance["prefix"], 1).match(dep["data"]["slot_name"])
    wait_slots(ps_instance["pg"], ps_instance["prefix"])
    assert stop(si) == 0


def test_wal_level_fixed_by_server_restart(ps_standin, ps_instance, ps_pg_replica):
    """The plugin's flow: ALTER SYSTEM wal_level=logical + server restart; the running instance
    recovers on its own (retries), creates its slot, and never stops being ready."""
    pg = ps_pg_replica
    src = pg.new_database("src")
    pg.psql("CREATE TABLE todos (id text PRIMARY KEY); CREATE PUBLICATION powersync FOR ALL TABLES", db=src)
    si = ps_standin(ps_instance["config"], env={"PS_DATA_SOURCE_URI": pg.uri(src)})
    si.wait_ready()
    si.wait_log("wal_level must be set to 'logical'")
    pg.psql("ALTER SYSTEM SET wal_level = logical")
    pg.container.restart(timeout=10)
    try:
        [slot] = wait_slots(pg, ps_instance["prefix"], timeout=60)
        assert slot_re(ps_instance["prefix"], 1).match(slot)
        assert si.status() == "running"
        assert si.fetch("GET", "/probes/readiness")[0] == 200
        wait_for(lambda: si.admin("POST", "/api/admin/v1/diagnostics", body="{}")[1]["data"]["connections"][0]["errors"] == [],
                 20, "connection errors cleared")
    finally:
        assert stop(si) == 0
        for s in pg.slots(ps_instance["prefix"]):
            pg.psql(f"SELECT pg_drop_replication_slot('{s}')")
        pg.psql("ALTER SYSTEM RESET wal_level")
        pg.container.restart(timeout=10)
        wait_for(lambda: pg.container.exec_run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "select 1"]).exit_code == 0,
                 60, "postgres back")


def test_takeover_after_hard_kill_when_lock_expires(ps_standin, ps_instance):
    """After a SIGKILL the lock is not released: the standby waits for the 60 s expiry
    (simulated here by ageing the lock row instead of sleeping a minute)."""
    pg, storage_db = ps_instance["pg"], ps_instance["storage_db"]
    a = ps_standin(ps_instance["config"])
    a.wait_ready()
    a.wait_log("Acquired replication lock")
    b = ps_standin(ps_instance["config"])
    b.wait_ready()
    b.wait_log("PSYNC_S1003")
    a.container.kill(signal="SIGKILL")
    a.wait_exit(10)
    time.sleep(4)
    assert "Acquired replication lock" not in b.logs()  # still locked by the dead process
    pg.psql("UPDATE powersync.locks SET ts = now() - interval '50 seconds'", db=storage_db)
    time.sleep(3)
    assert "Acquired replication lock" not in b.logs()
    pg.psql("UPDATE powersync.locks SET ts = now() - interval '61 seconds'", db=storage_db)
    b.wait_log("Acquired replication lock", timeout=10)


def test_postgres_data_survives_recreation(ps_docker, ps_network, ps_pg):
    labels = {"dokku-powersync-test": "1"}
    vol = ps_docker.volumes.create(f"dps-pgdata-{int(time.time() * 1000)}", labels=labels)
    mounts = {vol.name: {"bind": "/var/lib/postgresql/data", "mode": "rw"}}

    def run(password):
        c = ps_docker.containers.run(PG_IMAGE, detach=True, labels=labels, environment={"POSTGRES_PASSWORD": password},
                                     network=ps_network.name, volumes=mounts, name=f"{vol.name}-{password}")
        wait_for(lambda: c.exec_run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "select 1"]).exit_code == 0,
                 60, "postgres ready")
        return c

    try:
        a = run("first")
        assert a.exec_run(["psql", "-h", "localhost", "-U", "postgres", "-c", "CREATE TABLE survivor (x int)"]).exit_code == 0
        a.remove(force=True)
        b = run("second")
        try:
            assert "Skipping initialization" in b.logs().decode()
            assert b.exec_run(["psql", "-h", "localhost", "-U", "postgres", "-tAc", "SELECT count(*) FROM survivor"]).output.decode().strip() == "0"
            ok = ps_pg.container.exec_run(["psql", "-h", b.name, "-U", "postgres", "-tAc", "select 1"], environment={"PGPASSWORD": "first"})
            assert ok.exit_code == 0, ok.output  # the password from the first init is kept
        finally:
            b.remove(force=True)
    finally:
        vol.remove(force=True)


# ------------------------------------------------------------ rules through the deploy API
# Answers as routes/endpoints/sync-rules.ts and the Postgres storage's updateSyncRules at the
# 1.25.0 tag of powersync-ja/powersync-service, and as measured on the real image
# (/work/shared/facts/powersync-service.md "Rules through the service's own API").
def _sync_checkpoint(si) -> str:
    status, body = si.fetch("POST", "/sync/stream", headers={"Content-Type": "application/json",
                                                             "Authorization": f"Token {make_jwt(claims())}"}, body="{}")
    assert status == 200, body
    lines = [json.loads(x) for x in body.splitlines() if x]
    assert "checkpoint_complete" in lines[1]
    return lines[0]["checkpoint"]["last_op_id"]


def _rules_rows(ps_instance) -> str:
    return ps_instance["pg"].psql("SELECT string_agg(id || ':' || state, ',' ORDER BY id) FROM powersync.sync_rules",
                                  db=ps_instance["storage_db"])


def test_deploy_api_contract_and_restart(ps_standin, ps_instance):
    cfg = ps_instance["config"]
    del cfg["sync_config"]
    prefix = ps_instance["prefix"]
    si = ps_standin(cfg)
    si.wait_ready()
    status, cur = si.admin("GET", "/api/sync-rules/v1/current")
    assert status == 422 and cur["error"]["code"] == "PSYNC_S4104" and cur["error"]["description"] == "No active sync config"
    status, rep = si.admin("POST", "/api/sync-rules/v1/reprocess", body="{}")
    assert status == 422 and rep["error"]["code"] == "PSYNC_S4104"
    # Until some rules are active a sync stream is refused (PSYNC_S2302).
    status, body = si.fetch("POST", "/sync/stream", headers={"Content-Type": "application/json",
                                                             "Authorization": f"Token {make_jwt(claims())}"}, body="{}")
    assert status == 500 and json.loads(body)["error"]["code"] == "PSYNC_S2302"

    # Bad rules: 422 PSYNC_R0001 with the parser's reason in details, nothing stored.
    bad = "bucket_definitions:\n  g:\n    data:\n      - SELECT * FROM a JOIN b ON a.id = b.id\n"
    status, dep = si.admin("POST", "/api/sync-rules/v1/deploy", body=bad, content_type="application/yaml")
    assert status == 422, dep
    assert dep["error"]["code"] == "PSYNC_R0001" and dep["error"]["description"] == "Sync config parsing failed"
    assert "Must SELECT from a single table" in dep["error"]["details"]
    assert si.admin("GET", "/api/sync-rules/v1/current")[0] == 422
    assert _rules_rows(ps_instance) == ""

    # Good rules, JSON body: a new version; active within the fast refresh (0.6 s measured on the real one).
    started = time.monotonic()
    status, dep = si.admin("POST", "/api/sync-rules/v1/deploy", body=json.dumps({"content": RULES}))
    assert status == 200 and set(dep) == {"data"} and slot_re(prefix, 1).match(dep["data"]["slot_name"])
    slot1 = dep["data"]["slot_name"]
    cur = wait_for(lambda: (r := si.admin("GET", "/api/sync-rules/v1/current"))[0] == 200 and r[1], 10, "rules active")
    assert time.monotonic() - started < 4
    current = cur["data"]["current"]
    assert current["slot_name"] == slot1 and current["content"] == RULES and current["valid"] is True
    assert {"bucket_definitions", "source_tables", "data_tables"} <= set(current) and cur["data"]["next"] is None
    assert _sync_checkpoint(si) == "1000"

    # The same text deployed again is still a new version (no equality check on this path).
    status, dep = si.admin("POST", "/api/sync-rules/v1/deploy", body=RULES, content_type="application/yaml")
    assert status == 200 and slot_re(prefix, 2).match(dep["data"]["slot_name"])
    wait_for(lambda: si.admin("GET", "/api/sync-rules/v1/current")[1]["data"]["current"]["slot_name"] == dep["data"]["slot_name"],
             15, "version 2 active")
    wait_for(lambda: pg_slots == [dep["data"]["slot_name"]] if (pg_slots := ps_instance["pg"].slots(prefix)) else False,
             15, "old slot dropped")

    # reprocess: a new version of the active content.
    status, rep = si.admin("POST", "/api/sync-rules/v1/reprocess", body="{}")
    assert status == 200 and slot_re(prefix, 3).match(rep["data"]["slot_name"])
    wait_for(lambda: si.admin("GET", "/api/sync-rules/v1/current")[1]["data"]["current"]["slot_name"] == rep["data"]["slot_name"],
             15, "reprocessed version active")
    assert si.admin("GET", "/api/sync-rules/v1/current")[1]["data"]["current"]["content"] == RULES

    # Deployed rules survive a restart: same content active, clients sync from it.
    si.container.restart(timeout=10)
    si.wait_ready()
    status, cur = si.admin("GET", "/api/sync-rules/v1/current")
    assert status == 200 and cur["data"]["current"]["content"] == RULES
    assert cur["data"]["current"]["slot_name"] == rep["data"]["slot_name"]
    assert _sync_checkpoint(si) == "3000"
    assert _rules_rows(ps_instance).endswith("3:ACTIVE")


def test_reprocess_refused_while_deploying(ps_standin, ps_instance):
    cfg = ps_instance["config"]
    del cfg["sync_config"]
    ps_instance["pg"].psql("INSERT INTO todos SELECT g::text, 'x' FROM generate_series(1, 40) g", db=ps_instance["source_db"])
    si = ps_standin(cfg, env={"POWERSYNC_STANDIN_SNAPSHOT_ROWS_PER_SECOND": "10", "POWERSYNC_STANDIN_SNAPSHOT_CHUNK_ROWS": "10"})
    si.wait_ready()
    assert si.admin("POST", "/api/sync-rules/v1/deploy", body=RULES, content_type="application/yaml")[0] == 200
    status, rep = si.admin("POST", "/api/sync-rules/v1/reprocess", body="{}")
    assert status == 409 and rep["error"]["code"] == "PSYNC_S4106"
    assert rep["error"]["description"] == "Busy processing sync config - cannot reprocess"


# Fields of a diagnostics `tables` entry at v1.25.0 (packages/types/src/definitions.ts TableInfo;
# `pattern` only for wildcard tables). The real diagnostics carry no row counts: snapshot progress
# lives in storage (`powersync.source_tables.snapshot_replicated_count` /
# `snapshot_total_estimated_count`, migration 1749024804042-snapshot-progress) and in the logs.
TABLE_INFO_KEYS = {"schema", "name", "replication_id", "data_queries", "parameter_queries", "errors"}


def test_reprocessing_takes_time_and_reports_progress(ps_standin, ps_instance):
    pg, prefix = ps_instance["pg"], ps_instance["prefix"]
    cfg = ps_instance["config"]
    del cfg["sync_config"]
    pg.psql("INSERT INTO todos SELECT g::text, 'x' FROM generate_series(1, 100) g; ANALYZE todos", db=ps_instance["source_db"])
    si = ps_standin(cfg, env={"POWERSYNC_STANDIN_SNAPSHOT_ROWS_PER_SECOND": "10", "POWERSYNC_STANDIN_SNAPSHOT_CHUNK_ROWS": "10"})
    si.wait_ready()
    status, dep = si.admin("POST", "/api/sync-rules/v1/deploy", body=RULES, content_type="application/yaml")
    slot1 = dep["data"]["slot_name"]
    wait_for(lambda: si.admin("GET", "/api/sync-rules/v1/current")[0] == 200, 20, "first rules active")

    changed = RULES + "# changed\n"
    started = time.monotonic()
    status, dep = si.admin("POST", "/api/sync-rules/v1/deploy", body=changed, content_type="application/yaml")
    assert status == 200
    slot2 = dep["data"]["slot_name"]

    def progress():
        return pg.psql("SELECT snapshot_done, snapshot_replicated_count, snapshot_total_estimated_count "
                       "FROM powersync.source_tables WHERE group_id = 2", db=ps_instance["storage_db"])

    # Mid-way: the deploying version is reported beside the active one, which keeps serving.
    mid = wait_for(lambda: (p := progress()) and p.split("|")[1] not in ("", "0") and p, 10, "progress in storage")
    done, replicated, estimate = mid.split("|")
    assert done == "f" and 0 < int(replicated) < 100 and estimate == "100"
    assert sorted(pg.slots(prefix)) == sorted([slot1, slot2])
    diag = si.admin("POST", "/api/admin/v1/diagnostics", body="{}")[1]["data"]
    deploying, active = diag["deploying_sync_rules"], diag["active_sync_rules"]
    assert deploying["connections"][0]["slot_name"] == slot2
    assert deploying["connections"][0]["initial_replication_done"] is False
    assert active["connections"][0]["slot_name"] == slot1 and active["connections"][0]["initial_replication_done"] is True
    [table] = deploying["connections"][0]["tables"]
    assert set(table) == TABLE_INFO_KEYS and (table["schema"], table["name"], table["replication_id"]) == ("public", "todos", ["id"])
    cur = si.admin("GET", "/api/sync-rules/v1/current")[1]["data"]
    assert cur["current"]["content"] == RULES and cur["next"]["content"] == changed and cur["next"]["slot_name"] == slot2
    assert _sync_checkpoint(si) == "1000"  # clients still sync from version 1

    # Then the swap: version 2 active once its 100 rows are copied (10 s at 10 rows/s).
    wait_for(lambda: si.admin("GET", "/api/sync-rules/v1/current")[1]["data"]["current"]["slot_name"] == slot2, 20, "swap")
    assert time.monotonic() - started >= 9
    diag = si.admin("POST", "/api/admin/v1/diagnostics", body="{}")[1]["data"]
    assert diag.get("deploying_sync_rules") is None
    assert diag["active_sync_rules"]["connections"][0]["initial_replication_done"] is True
    assert progress() == "t||"  # the real markTableSnapshotDone clears the counts
    assert _sync_checkpoint(si) == "2000"
    wait_for(lambda: pg.slots(prefix) == [slot2], 15, "old slot dropped")
    logs = si.messages()
    assert 'To replicate: "public"."todos" 0/~100' in logs
    assert 'Replicating "public"."todos" 10/~100' in logs and 'Replicating "public"."todos" 100/~100' in logs


# ------------------------------------------------------------ as the real 1.25.0 image answers
# Observed on the real PowerSync Service 1.25.0 image built from source (tag v1.25.0, the repo's
# service/Dockerfile on this test bed's Debian base); see tests/standin/README.md "Compared with
# the real image".
def test_diagnostics_table_errors_as_the_real_service(ps_standin, ps_instance):
    pg, cfg = ps_instance["pg"], ps_instance["config"]
    del cfg["sync_config"]
    pg.psql("CREATE TABLE lists (id text PRIMARY KEY); CREATE TABLE nokey (v text); DROP PUBLICATION powersync; "
            "CREATE PUBLICATION powersync FOR TABLE todos, nokey", db=ps_instance["source_db"])
    si = ps_standin(cfg)
    si.wait_ready()
    [connection] = si.admin("POST", "/api/admin/v1/diagnostics", body="{}")[1]["data"]["connections"]
    assert connection["postgres_uri"].startswith("postgresql://") and "@" not in connection["postgres_uri"]
    rules = ("bucket_definitions:\n  g:\n    data:\n      - SELECT * FROM todos\n      - SELECT * FROM lists\n"
             "      - SELECT * FROM nokey\n      - SELECT * FROM missing\n")
    assert si.admin("POST", "/api/sync-rules/v1/deploy", body=rules, content_type="application/yaml")[0] == 200
    # The real service activates such rules all the same (a table outside the publication is
    # simply not replicated); its diagnostics keep reporting the fatal errors once they are active.
    wait_for(lambda: si.admin("GET", "/api/sync-rules/v1/current")[0] == 200, 20, "rules active")
    active = si.admin("POST", "/api/admin/v1/diagnostics", body="{}")[1]["data"]["active_sync_rules"]
    [conn] = active["connections"]
    assert conn["wal_status"] == "reserved"
    tables = {t["name"]: t for t in conn["tables"]}
    assert tables["todos"]["errors"] == [] and tables["todos"]["replication_id"] == ["id"]
    assert tables["lists"]["errors"] == [{"level": "fatal", "message": (
        "Table \"public\".\"lists\" is not part of publication 'powersync'. "
        "Run: `ALTER PUBLICATION powersync ADD TABLE \"public\".\"lists\"`.")}]
    assert tables["nokey"]["replication_id"] == [] and tables["nokey"]["errors"] == [{"level": "fatal", "message": (
        "No replication id found for \"public\".\"nokey\". Replica identity: default. Configure a primary key on the table.")}]
    assert tables["missing"]["errors"] == [{"level": "warning", "message": "Table \"public\".\"missing\" not found."}]
    assert [e["level"] for e in active["errors"]] == ["fatal", "fatal", "warning"]


def test_sync_stream_refusals_as_the_real_service(ps_standin, ps_instance):
    cfg = ps_instance["config"]
    del cfg["sync_config"]
    si = ps_standin(cfg)
    si.wait_ready()

    def stream(token):
        status, body = si.fetch("POST", "/sync/stream", headers={"Content-Type": "application/json",
                                                                 "Authorization": f"Token {token}"}, body="{}")
        return status, json.loads(body)["error"]

    # A valid token before any rules: authenticated, then 500 PSYNC_S2302.
    assert stream(make_jwt(claims())) == (500, {"name": "ServiceError", "code": "PSYNC_S2302", "status": 500,
                                                "description": "No sync config available"})
    # 401s carry the code and description only: the details stay in the service's logs.
    now = int(time.time())
    cases = [
        (make_jwt(claims(), secret=b"wrong"), "PSYNC_S2101", "signature verification failed"),
        (make_jwt(claims(iat=now - 1000, exp=now - 500)), "PSYNC_S2103", "JWT has expired"),
        ("garbage", "PSYNC_S2101", "Token is not a well-formed JWT. Check the token format."),
        (make_jwt({k: v for k, v in claims().items() if k != "sub"}), "PSYNC_S2101", 'JWT payload is missing a required claim "sub"'),
        (make_jwt(claims(aud="other")), "PSYNC_S2105", 'Unexpected "aud" claim value: "other"'),
        (make_jwt(claims(), kid="zz"), "PSYNC_S2101",
         "Could not find an appropriate key in the keystore. The key is missing or no key matched the token KID"),
    ]
    for token, code, description in cases:
        assert stream(token) == (401, {"name": "AuthorizationError", "code": code, "status": 401, "description": description})


def test_logs_are_json_by_default_as_in_the_real_image(ps_standin, ps_instance):
    # The real image sets NODE_ENV=production, so lib-services logs JSON unless PS_LOG_FORMAT or
    # system.logging.format say otherwise; snapshot lines carry the slot as a prefix.
    pg, cfg = ps_instance["pg"], ps_instance["config"]
    del cfg["sync_config"]
    pg.psql("INSERT INTO todos SELECT g::text, 'x' FROM generate_series(1, 20) g", db=ps_instance["source_db"])
    si = ps_standin(cfg)
    si.wait_ready()
    status, dep = si.admin("POST", "/api/sync-rules/v1/deploy", body=RULES, content_type="application/yaml")
    assert status == 200
    slot = dep["data"]["slot_name"]
    wait_for(lambda: si.admin("GET", "/api/sync-rules/v1/current")[0] == 200, 20, "rules active")
    lines = [json.loads(line) for line in si.logs().splitlines()]  # every line is JSON
    assert all({"level", "message", "timestamp"} <= set(line) for line in lines)
    messages = [line["message"] for line in lines]
    assert 'Configured logger with level "info" and format "json"' in messages
    assert f'[{slot}] Replicating "public"."todos" 0/? - resumable' in messages  # never analyzed: no estimate
    assert '\\"public\\".\\"todos\\"' in si.logs()  # as the plugin reads them from `docker logs`

    text = ps_standin(cfg, env={"PS_LOG_FORMAT": "text"})
    text.wait_ready()
    assert 'Configured logger with level "info" and format "text"' in text.logs()
    assert "[info]: Service ready" in text.logs()


def test_a_slot_it_cannot_create_is_a_fatal_error_of_the_deploying_rules(ps_standin, ps_instance):
    # The real 1.25.0 image (observed) with every replication slot in use: the deploy is accepted,
    # the rules stay deploying, and their diagnostics carry the replication's own fatal error (not
    # a table's), logged with its cause.
    pg, cfg = ps_instance["pg"], ps_instance["config"]
    del cfg["sync_config"]
    si = ps_standin(cfg)
    si.wait_ready()
    free = int(pg.psql("SELECT current_setting('max_replication_slots')::int - count(*) FROM pg_replication_slots"))
    fillers = f"filler_{ps_instance['prefix']}"
    pg.psql(f"SELECT pg_create_logical_replication_slot('{fillers}' || g, 'pgoutput') FROM generate_series(1, {free}) g")
    try:
        status, dep = si.admin("POST", "/api/sync-rules/v1/deploy", body=RULES, content_type="application/yaml")
        assert status == 200
        fatal = {"level": "fatal", "message": "[PSYNC_S1120] Postgres error while replicating"}
        deploying = wait_for(
            lambda: (d := si.admin("POST", "/api/admin/v1/diagnostics", body="{}")[1]["data"].get("deploying_sync_rules"))
            and fatal in d["errors"] and d, 15, "the fatal error in the diagnostics")
        assert deploying["connections"][0]["initial_replication_done"] is False
        assert all(t["errors"] == [] for t in deploying["connections"][0]["tables"])
        assert si.admin("GET", "/api/sync-rules/v1/current")[0] == 422
        assert "cause all replication slots are in use" in si.messages()
    finally:
        for slot in pg.slots(fillers):
            pg.psql(f"SELECT pg_drop_replication_slot('{slot}')", check=False)


def test_a_slot_error_is_retried_and_listed_until_the_rules_replicate(ps_standin, ps_instance):
    # The real 1.25.0 image (observed, tests/standin/README.md): after a slot it cannot create it
    # retries the version every 30 s (PostgresErrorRateLimiter), never gives up, and the
    # diagnostics keep listing the stored error between attempts, also once a slot is free, until
    # the retry copies rows; then the rules activate and the error is gone. Retry interval
    # shortened here by the stand-in's knob.
    pg, cfg = ps_instance["pg"], ps_instance["config"]
    del cfg["sync_config"]
    si = ps_standin(cfg, env={"POWERSYNC_STANDIN_RETRY_SECONDS": "6"})
    si.wait_ready()
    fillers = f"filler_{ps_instance['prefix']}"
    free = int(pg.psql("SELECT current_setting('max_replication_slots')::int - count(*) FROM pg_replication_slots"))
    pg.psql(f"SELECT pg_create_logical_replication_slot('{fillers}' || g, 'pgoutput') FROM generate_series(1, {free}) g")
    fatal = {"level": "fatal", "message": "[PSYNC_S1120] Postgres error while replicating"}

    def deploying():
        return si.admin("POST", "/api/admin/v1/diagnostics", body="{}")[1]["data"].get("deploying_sync_rules")

    try:
        assert si.admin("POST", "/api/sync-rules/v1/deploy", body=RULES, content_type="application/yaml")[0] == 200
        wait_for(lambda: (d := deploying()) and fatal in d["errors"], 15, "the fatal error")
        wait_for(lambda: si.messages().count("cause all replication slots are in use") >= 2, 20, "a second attempt")
        attempts = [line for line in si.messages().splitlines() if "cause all replication slots" in line]
        assert len(attempts) == 2, attempts  # not every tick: once per retry interval
        pg.psql(f"SELECT pg_drop_replication_slot('{pg.slots(fillers)[0]}')")
        time.sleep(2)  # a free slot, but the next attempt has not come yet
        assert fatal in deploying()["errors"]
        assert si.admin("GET", "/api/sync-rules/v1/current")[0] == 422
        wait_for(lambda: si.admin("GET", "/api/sync-rules/v1/current")[0] == 200, 20, "the rules activate")
        active = si.admin("POST", "/api/admin/v1/diagnostics", body="{}")[1]["data"]["active_sync_rules"]
        assert fatal not in active["errors"]
        assert si.messages().count("cause all replication slots are in use") == 2
    finally:
        for slot in pg.slots(fillers):
            pg.psql(f"SELECT pg_drop_replication_slot('{slot}')", check=False)
