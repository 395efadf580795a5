"""Issue 11, least privilege on the source: `link --source-role dedicated` makes the instance
replicate as its own Postgres role (LOGIN REPLICATION, SELECT on the tables of the `powersync`
publication, owner of its storage database), created at link and dropped at unlink, on the
harness's real Postgres 15 with the stand-in connecting as that role.

The role's password is never printed: the tests compare it only by membership, and identify the
role in a DSN by its user name.
"""
from __future__ import annotations

import json
import subprocess
import time
from urllib.parse import urlsplit

import docker

from tests.e2e.conftest import (
    RULES, app_config, create_instance, history, linked_instance, make_backend, make_source, slots, snapshot,
    sync_stream_status,
)


def sql_rows(h, service: str, sql: str, database: str = "") -> list[list[str]]:
    script = "\\pset tuples_only on\n\\pset format unaligned\n"
    if database:
        script += f"\\connect {database}\n"
    result = h.run("postgres:connect", service, input=script + sql + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    return [line.split("|") for line in result.stdout.splitlines() if line and not line.startswith(("Tuples", "Output", "You are now"))]


def role_of(name: str) -> str:
    return "powersync_" + name.replace("-", "_")


def roles(h, service: str) -> list[str]:
    return sorted(row[0] for row in sql_rows(h, service, "SELECT rolname FROM pg_roles;"))


def attributes(h, service: str, role: str) -> list[list[str]]:
    return sql_rows(
        h, service,
        "SELECT rolcanlogin, rolreplication, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolinherit "
        f"FROM pg_roles WHERE rolname = '{role}';",
    )


def privileges(h, service: str, role: str, table: str) -> dict[str, bool]:
    kinds = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    columns = ", ".join(f"has_table_privilege('{role}', '{table}', '{kind}')" for kind in kinds)
    row = sql_rows(h, service, f"SELECT {columns};")[0]
    return dict(zip(kinds, (value == "t" for value in row)))


def dsn_user(dsn: str) -> str:
    return urlsplit(dsn).username or ""


def dsn_password(dsn: str) -> str:
    return urlsplit(dsn).password or ""


def walsender_users(h, service: str) -> list[str]:
    return [row[0] for row in sql_rows(h, service, "SELECT usename FROM pg_stat_replication;")]


def wait_for(check, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def running_env(name: str) -> dict[str, str]:
    env = docker.from_env().containers.get(f"{name}.web.1").attrs["Config"]["Env"]
    return dict(item.split("=", 1) for item in env)


def container_logs(name: str) -> str:
    result = subprocess.run(["docker", "logs", f"{name}.web.1"], capture_output=True, text=True)
    return result.stdout + result.stderr


def test_dedicated_role_is_created_used_rotated_and_dropped(harness):
    h = harness
    # Its own server: the test changes the superuser's password. The publication lists two
    # tables; audit_log is not published, so the role must not read it.
    service = make_source(h, publication=False)
    setup = "CREATE TABLE audit_log (id text primary key, what text);\nCREATE PUBLICATION powersync FOR TABLE todos, lists;\n"
    assert h.run("postgres:connect", service, input=setup).returncode == 0
    backend = make_backend(h, service)
    name = create_instance(h)
    role = role_of(name)
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    roles_before = roles(h, service)
    databases_before = sorted(row[0] for row in sql_rows(h, service, "SELECT datname FROM pg_database;"))

    # A dry run names the role it would create, and changes nothing.
    world = snapshot(h, name, backend.app)
    dry = h.run("powersync:link", name, backend.app, "--source-role", "dedicated", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"create source role" in dry.stdout and role in dry.stdout, dry.stdout
    assert snapshot(h, name, backend.app) == world
    assert roles(h, service) == roles_before

    linked = h.run("powersync:link", name, backend.app, "--source-role", "dedicated")
    assert linked.returncode == 0, linked.stdout + linked.stderr
    env = app_config(h, name)
    source_dsn, storage_dsn = env["PS_DATA_SOURCE_URI"], env["PS_STORAGE_SOURCE_URI"]
    password = dsn_password(source_dsn)
    assert len(password) >= 32
    assert password not in linked.stdout + linked.stderr + dry.stdout + dry.stderr

    # Exactly the privileges it needs.
    assert attributes(h, service, role) == [["t", "t", "f", "f", "f", "f", "t"]]
    for table in ("todos", "lists"):
        assert privileges(h, service, role, table) == {
            "SELECT": True, "INSERT": False, "UPDATE": False, "DELETE": False, "TRUNCATE": False,
            "REFERENCES": False, "TRIGGER": False,
        }, table
    assert privileges(h, service, role, "audit_log")["SELECT"] is False
    storage_db = f"powersync_{name.replace('-', '_')}"
    owner = sql_rows(h, service, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{storage_db}';")
    assert owner == [[role]]
    member_of = sql_rows(h, service, f"SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = '{role}';")
    assert member_of == [["0"]]

    # The instance's config and its running container use the role, never the superuser.
    assert dsn_user(source_dsn) == role and dsn_user(storage_dsn) == role
    assert dsn_password(storage_dsn) == password
    running = running_env(name)
    assert dsn_user(running["PS_DATA_SOURCE_URI"]) == role and dsn_user(running["PS_STORAGE_SOURCE_URI"]) == role

    # It replicates as the role and serves a sync stream.
    wait_for(lambda: role in walsender_users(h, service), what="a walsender of the role")
    assert any(slot.startswith(f"ps_{name.replace('-', '_')}_") for slot in slots(h, service))
    assert sync_stream_status(name, backend.token(backend.app, None))[0] == 200

    # Shown and journaled, the password masked.
    info = h.run("powersync:info", name, "--source-role")
    assert info.returncode == 0 and info.stdout.strip() == f"dedicated ({role})", info.stdout + info.stderr
    full_info = h.run("powersync:info", name)
    assert password not in full_info.stdout
    shown = h.run("powersync:history", name, "--format", "json", "--show", str(next(
        row["revision"] for row in history(h, name) if row["event"] == "backend.linked"
    )))
    assert shown.returncode == 0, shown.stderr
    assert password not in shown.stdout
    payload = json.loads(shown.stdout)["event"]["payload"]
    assert payload["source_role"] == "dedicated" and payload["source_role_name"] == role
    assert payload["source_role_password"] == "*****"

    # A table added to the publication later is granted by rotate (the publication lists tables).
    assert h.run("postgres:connect", service, input="ALTER PUBLICATION powersync ADD TABLE audit_log;\n").returncode == 0
    assert privileges(h, service, role, "audit_log")["SELECT"] is False
    rotated = h.run("powersync:rotate", name)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert privileges(h, service, role, "audit_log") == {
        "SELECT": True, "INSERT": False, "UPDATE": False, "DELETE": False, "TRUNCATE": False,
        "REFERENCES": False, "TRIGGER": False,
    }

    # The backend's DATABASE_URL rotates (new superuser password, a new query): the instance
    # follows the host/db/query part and keeps its role and password.
    new_password = "rotated" + "9" * 25
    assert h.run("postgres:connect", service, input=f"ALTER USER postgres PASSWORD '{new_password}';\n").returncode == 0
    old_url = h.run("config:get", backend.app, "DATABASE_URL").stdout.strip()
    parts = urlsplit(old_url)
    new_url = f"{parts.scheme}://postgres:{new_password}@{parts.hostname}:{parts.port}{parts.path}?application_name=api"
    changed = h.run("config:set", "--no-restart", backend.app, f"DATABASE_URL={new_url}")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    env = app_config(h, name)
    assert env["PS_DATA_SOURCE_URI"].endswith("?application_name=api"), "the rotation did not reach the instance"
    assert dsn_user(env["PS_DATA_SOURCE_URI"]) == role and dsn_password(env["PS_DATA_SOURCE_URI"]) == password
    assert new_password not in env["PS_DATA_SOURCE_URI"] and new_password not in env["PS_STORAGE_SOURCE_URI"]
    assert dsn_user(running_env(name)["PS_DATA_SOURCE_URI"]) == role
    wait_for(lambda: role in walsender_users(h, service), what="a walsender of the role after rotation")
    assert sync_stream_status(name, backend.token(backend.app, None))[0] == 200

    # Unlink drops the role and nothing else (the storage database stays until destroy, given
    # back to the service's superuser).
    unlinked = h.run("powersync:unlink", name, backend.app)
    assert unlinked.returncode == 0, unlinked.stdout + unlinked.stderr
    assert roles(h, service) == roles_before
    assert sorted(row[0] for row in sql_rows(h, service, "SELECT datname FROM pg_database;")) == sorted(databases_before + [storage_db])
    assert sql_rows(h, service, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{storage_db}';") == [["postgres"]]
    tables = sql_rows(h, service, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1;")
    assert tables == [["audit_log"], ["lists"], ["todos"]]
    assert not [slot for slot in slots(h, service) if slot.startswith(f"ps_{name.replace('-', '_')}_")]
    assert h.run("powersync:info", name, "--source-role").stdout.strip() == "-"


def test_tables_created_later_are_readable_under_an_all_tables_publication(harness, source):
    """FOR ALL TABLES publishes every new table at once: default privileges give the role SELECT
    on the tables the service's superuser (the backend's user) creates later, in any schema."""
    h = harness
    name, backend = linked_instance(h, source, "--source-role", "dedicated")
    role = role_of(name)
    table = f"later_{name.replace('-', '_')}"
    schema = f"s_{name.replace('-', '_')}"
    made = f"CREATE TABLE {table} (id text primary key);\nCREATE SCHEMA {schema};\nCREATE TABLE {schema}.t (id text primary key);\n"
    assert h.run("postgres:connect", source, input=made).returncode == 0
    assert privileges(h, source, role, table)["SELECT"] is True
    assert privileges(h, source, role, table)["INSERT"] is False
    assert privileges(h, source, role, f"{schema}.t")["SELECT"] is True
    assert sql_rows(h, source, f"SELECT has_schema_privilege('{role}', '{schema}', 'USAGE'), has_schema_privilege('{role}', '{schema}', 'CREATE');") == [["t", "f"]]
    unlinked = h.run("powersync:unlink", name, backend.app)
    assert unlinked.returncode == 0, unlinked.stdout + unlinked.stderr
    assert role not in roles(h, source)
    assert sql_rows(h, source, f"SELECT tablename FROM pg_tables WHERE tablename = '{table}';") == [[table]]


def test_the_stand_in_fails_as_postgres_says_without_replication(harness, source):
    """The stand-in connects as the role: without REPLICATION it cannot create its slot, and logs
    Postgres's own refusal, as the real service does (its readiness stays 200)."""
    h = harness
    name, backend = linked_instance(h, source, "--source-role", "dedicated")
    role = role_of(name)
    wait_for(lambda: role in walsender_users(h, source), what="a walsender of the role")
    own = f"ps_{name.replace('-', '_')}_"
    drop = (
        f"ALTER ROLE {role} NOREPLICATION;\n"
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE usename = '{role}';\n"
    )
    assert h.run("postgres:connect", source, input=drop).returncode == 0
    wait_for(
        lambda: "must be superuser or replication role" in container_logs(name),
        what="Postgres's refusal in the instance's logs",
    )
    assert role not in walsender_users(h, source)
    assert h.run("postgres:connect", source, input=f"ALTER ROLE {role} REPLICATION;\n").returncode == 0
    wait_for(lambda: role in walsender_users(h, source), what="the walsender back with REPLICATION")
    assert h.run("powersync:unlink", name, backend.app).returncode == 0
    assert not [slot for slot in slots(h, source) if slot.startswith(own)]


def test_a_bad_source_role_is_refused_and_changes_nothing(harness, source):
    h = harness
    backend = make_backend(h, source)
    name = create_instance(h)
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    before = snapshot(h, name, backend.app)
    roles_before = roles(h, source)
    for value in ("admin", "", "Dedicated", "dedicated;DROP ROLE postgres"):
        result = h.run("powersync:link", name, backend.app, "--source-role", value)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "--source-role" in result.stderr and "superuser" in result.stderr and "dedicated" in result.stderr
        assert snapshot(h, name, backend.app) == before
    assert roles(h, source) == roles_before


def test_an_adopted_instance_moves_to_its_own_role_at_its_first_managed_publish(harness):
    """Adoption writes nothing and restarts nothing; the first managed change (one zero-downtime
    restart) makes the role, hands it the storage (same-database here: schema powersync) and
    publishes its DSN; the new container takes over the same slot as the role."""
    from tests.e2e.jeeves import deploy_jeeves

    h = harness
    d = deploy_jeeves(h, "config-b64")
    app, backend = d.powersync_app, d.backend_app
    role = role_of(app)
    roles_before = roles(h, d.service)
    slots_before = d.current_slots()
    deploys_before = len(h.deploys(app))

    dry = h.run("powersync:adopt", app, "--source-role", "dedicated", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"replicate as its own role {role}" in dry.stdout
    before = snapshot(h, app, backend)
    adopted = h.run("powersync:adopt", app, "--source-role", "dedicated")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    after = snapshot(h, app, backend)
    assert after["configs"] == before["configs"] and len(h.deploys(app)) == deploys_before
    assert roles(h, d.service) == roles_before  # nothing written at adoption
    assert h.run("powersync:info", app, "--source-role").stdout.strip() == f"dedicated ({role})"

    published = h.run("powersync:set-rules", app, input=d.rules)
    assert published.returncode == 0, published.stdout + published.stderr
    assert len(h.deploys(app)) == deploys_before + 1
    env = app_config(h, app)
    password = dsn_password(env["PS_DATA_SOURCE_URI"])
    assert dsn_user(env["PS_DATA_SOURCE_URI"]) == role and password not in published.stdout + published.stderr
    assert dsn_user(running_env(app)["PS_DATA_SOURCE_URI"]) == role
    assert attributes(h, d.service, role) == [["t", "t", "f", "f", "f", "f", "t"]]
    assert sql_rows(h, d.service, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'powersync';") == [[role]]
    assert d.current_slots() == slots_before  # the same slot, no reprocessing
    wait_for(lambda: role in walsender_users(h, d.service), what="a walsender of the role", timeout=90)
    assert d.sync_status(d.token())[0] == 200

    unlinked = h.run("powersync:unlink", app, backend)
    assert unlinked.returncode == 0, unlinked.stdout + unlinked.stderr
    assert roles(h, d.service) == roles_before
    assert sql_rows(h, d.service, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'powersync';") == [["postgres"]]


def test_the_role_password_is_on_no_command_line(harness, source):
    """Every process's command line, sampled while link --source-role dedicated, rotate, status
    and unlink run: the role's password (and its SCRAM verifier's keys) appear on none."""
    from tests.e2e.test_no_secret_on_argv import ArgvSampler, dokku_own

    h = harness
    backend = make_backend(h, source)
    name = create_instance(h)
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    sampler = ArgvSampler()
    sampler.start()
    try:
        linked = h.run("powersync:link", name, backend.app, "--source-role", "dedicated")
        assert linked.returncode == 0, linked.stdout + linked.stderr
        password = dsn_password(app_config(h, name)["PS_DATA_SOURCE_URI"])
        for command in (("powersync:rotate", name), ("powersync:status", name), ("powersync:unlink", name, backend.app)):
            result = h.run(*command)
            assert result.returncode == 0, result.stdout + result.stderr
            assert password not in result.stdout + result.stderr
    finally:
        sampler.stop()
    assert sampler.sweeps > 20, "the sampler barely ran"
    assert len(password) >= 32
    found = [pid for argv, pid in sampler.seen.items() if not dokku_own(argv) and password in " ".join(argv)]
    assert not found, f"the role's password on the command line of pids {found}"


def test_apps_destroy_of_a_dedicated_instance_drops_slots_storage_then_the_role(harness, source):
    h = harness
    name, backend = linked_instance(h, source, "--source-role", "dedicated")
    role = role_of(name)
    storage_db = f"powersync_{name.replace('-', '_')}"
    assert role in roles(h, source)
    destroyed = h.run("apps:destroy", name, "--force")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert "left" not in destroyed.stdout + destroyed.stderr, destroyed.stdout + destroyed.stderr
    assert role not in roles(h, source)
    assert sql_rows(h, source, f"SELECT datname FROM pg_database WHERE datname = '{storage_db}';") == []
    assert not [slot for slot in slots(h, source) if slot.startswith(f"ps_{name.replace('-', '_')}_")]
    assert history(h, name)[-1]["event"] == "instance.destroyed"
