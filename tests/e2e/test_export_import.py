"""Issue 14, "Move or restore an instance": `powersync:export NAME > file` on one host and
`powersync:import --link BACKEND < file` on another (two separate harnesses) recreate the
instance: same rules served to a client whose token the new backend signs, the same history plus
the import, no secret in the file; refusals change nothing."""
from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import urlsplit

import docker

from powersync_plugin.core.derive import secret_key_b64
from tests.e2e.conftest import (
    RULES, RULES_2, app_config, create_instance, history, journal_rows, linked_instance, make_backend, make_source, snapshot,
    sync_stream_status,
)
from tests.e2e.jeeves import b64url_nopad, deploy_jeeves
from tests.harness.fixture import make_harness


def served_rules(instance: str, api_token: str) -> str:
    """The rules the running service serves (GET /api/sync-rules/v1/current), asked from inside
    its container with its API token (in the exec environment, not on a command line)."""
    container = docker.from_env().containers.get(f"{instance}.web.1")
    script = (
        "fetch('http://127.0.0.1:8080/api/sync-rules/v1/current',{headers:{Authorization:'Bearer '+process.env.T}})"
        ".then(async r=>process.stdout.write(JSON.stringify({status:r.status,body:await r.text()})))"
    )
    result = json.loads(container.exec_run(["node", "-e", script], environment={"T": api_token}).output.decode())
    assert result["status"] == 200, result
    return json.loads(result["body"])["data"]["current"]["content"]


def info(h, name: str, flag: str) -> str:
    result = h.run("powersync:info", name, flag)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def refused(h, args: tuple, text: str, message: str, *apps: str) -> None:
    """A refused import: exit 1, the message on stderr, and the host exactly as it was."""
    before = snapshot(h, *apps)
    result = h.run(*args, input=text)
    assert result.returncode == 1, result.stdout + result.stderr
    assert " !     " in result.stderr and message in result.stderr, result.stderr
    assert snapshot(h, *apps) == before


def test_an_instance_moves_to_a_fresh_host_with_its_rules_settings_and_history(harness, source):
    a = harness
    old_backend = make_backend(a, source, secret_key="s3cret-" + uuid.uuid4().hex * 2)
    name = create_instance(a)
    assert a.run("powersync:set-rules", name, input=RULES).returncode == 0
    linked = a.run("powersync:link", name, old_backend.app, "--kid", "k-1", "--source-role", "dedicated")
    assert linked.returncode == 0, linked.stdout + linked.stderr
    assert a.run("powersync:set-rules", name, input=RULES_2).returncode == 0
    assert a.run("powersync:set", name, "telemetry", "off").returncode == 0
    old_token = a.run("config:get", name, "PS_API_TOKEN").stdout.strip()
    assert served_rules(name, old_token) == RULES_2
    dsn_password = urlsplit(app_config(a, old_backend.app)["DATABASE_URL"]).password
    rows_before = history(a, name, "--all")
    role_password = next(
        json.loads(row[5])["source_role_password"] for row in journal_rows(a) if row[1] == name and row[3] == "backend.linked"
    )

    exported = a.run("powersync:export", name)
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)  # stdout is the document and nothing else
    head = document["settings"]["journal_revision"]  # every event, outcomes included (history rows omit them)
    assert head == len(document["events"]) > len(rows_before)
    assert f"-----> Exported {name}: {head} revisions" in exported.stderr
    assert document["format"] == "dokku-powersync-export" and document["format_version"] == 1
    assert document["domains"] == [f"{name}.example.test"] and document["settings"]["rules_revision"] == "r2"
    for secret in (old_backend.secret_key, secret_key_b64(old_backend.secret_key), dsn_password, old_token, role_password):
        assert len(secret) >= 8 and secret not in exported.stdout
        assert base64.b64encode(secret.encode()).decode()[:12] not in exported.stdout
    assert "revision 1 (instance.created) api_token" in document["withheld"]

    # The old host goes away: its container name (APP.web.1) is global on this Docker engine.
    assert a.run("powersync:unlink", name, old_backend.app).returncode == 0
    assert a.run("powersync:destroy", name, "--force").returncode == 0

    b = make_harness()
    try:
        assert b.install_plugin().returncode == 0
        new_source = make_source(b)
        # The backend on the new host signs with the same SECRET_KEY (moved with the app's config).
        new_backend = make_backend(b, new_source, secret_key=old_backend.secret_key)
        no_key = make_backend(b, new_source, secret_key=None)
        args = ("powersync:import", "--link", new_backend.app)
        lines = exported.stdout.splitlines()
        newer = json.dumps({**document, "format_version": 2})
        refused(b, args, newer, "export format 2, written by a newer dokku-powersync", new_backend.app)
        refused(b, args, "\n".join(lines[: len(lines) // 2]), "not a complete export (corrupt or truncated", new_backend.app)
        refused(b, args, exported.stdout.replace("SELECT * FROM lists", "SELECT * FROM todos"), "digest does not match")
        refused(b, ("powersync:import", "--link", "no-such-app"), exported.stdout, "App no-such-app does not exist")
        refused(b, ("powersync:import", "--link", no_key.app), exported.stdout, f"{no_key.app} has no SECRET_KEY", no_key.app)

        before = snapshot(b, new_backend.app)
        dry = b.run(*args, "--dry-run", input=exported.stdout)
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "=====> Plan (dry run: nothing changed)" in dry.stdout and f"+ create app on {name}" in dry.stdout
        assert f"+ record history on {name} revisions 1..{head} as exported, the import as revision {head + 1}" in dry.stdout
        assert f"+ link backend on {name} {new_backend.app}, --source-role dedicated" in dry.stdout
        assert snapshot(b, new_backend.app) == before

        result = b.run(*args, "--format", "json", input=exported.stdout)
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert report["revisions"] == head and report["linked_backend"] == new_backend.app

        # A client of the new backend syncs, and the service serves the same rules.
        new_token = b.run("config:get", name, "PS_API_TOKEN").stdout.strip()
        assert new_token and new_token != old_token
        assert served_rules(name, new_token) == RULES_2
        status, body = sync_stream_status(name, new_backend.token(old_backend.app, "k-1"))
        assert status == 200 and "checkpoint" in body, body
        assert info(b, name, "--telemetry") == "off" and info(b, name, "--rules-revision") == "r2"
        assert info(b, name, "--kid") == "k-1" and info(b, name, "--audience") == old_backend.app
        assert info(b, name, "--source-role").startswith("dedicated (")
        assert app_config(b, new_backend.app)["POWERSYNC_URL"] == f"http://{name}.example.test"

        # The same history, then the import and the new link.
        rows_after = history(b, name, "--all")
        assert rows_after[: len(rows_before)] == rows_before
        imported, relinked, activated = rows_after[len(rows_before):]
        assert (activated["event"], activated["status"]) == ("rules.activated", "observed")  # followed on the new host
        assert imported["event"] == "instance.imported" and imported["status"] == "observed"
        assert imported["revision"] == head + 1 and imported["description"].startswith("Imported from ")
        assert relinked["event"] == "backend.linked" and relinked["status"] == "applied"
        assert history(b, name, "--limit", "3") == rows_after[-3:]  # windowed history agrees

        refused(b, args, exported.stdout, f"Instance {name} already exists on this host", name, new_backend.app)
    finally:
        b.cleanup()


def test_an_import_whose_link_fails_keeps_the_instance_unlinked_and_says_what_it_restored(harness, source):
    h = harness
    name = create_instance(h, "--memory", "512m")
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    exported = h.run("powersync:export", name)
    assert exported.returncode == 0, exported.stderr
    assert h.run("powersync:destroy", name, "--force").returncode == 0
    refused(h, ("powersync:import",), exported.stdout, f"holds the history of an earlier instance named {name}")

    b = make_harness()
    try:
        assert b.install_plugin().returncode == 0
        replica = make_source(b, wal_level="replica")
        backend = make_backend(b, replica)
        result = b.run("powersync:import", "--link", backend.app, input=exported.stdout)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"{name} was imported (app, settings, rules and revisions 1..3, the import as revision 4)" in result.stderr
        assert "wal_level" in result.stderr and f"`dokku powersync:link {name} {backend.app}`" in result.stderr
        assert info(b, name, "--linked-backend") == "-" and info(b, name, "--memory") == "512m"
        assert [row["event"] for row in history(b, name, "--all")][-1] == "instance.imported"
        assert b.run("powersync:rules", name).stdout == RULES
    finally:
        b.cleanup()


def test_an_export_that_would_carry_a_secret_or_names_no_instance_writes_nothing(harness, source):
    h = harness
    missing = h.run("powersync:export", "no-such-instance")
    assert missing.returncode == 1 and "does not exist" in missing.stderr and not missing.stdout
    name, backend = linked_instance(h, source)
    leaky = RULES + f"# signed with {backend.secret_key}\n"  # rules are exported byte for byte
    assert h.run("powersync:set-rules", name, input=leaky).returncode == 0
    result = h.run("powersync:export", name)
    assert result.returncode == 1 and not result.stdout
    assert "would carry a secret" in result.stderr and backend.secret_key not in result.stderr
    # Later rules do not help: every revision is exported. A new key does (the old one is no secret then).
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    again = h.run("powersync:export", name)
    assert again.returncode == 1 and "would carry a secret" in again.stderr and "change that secret" in again.stderr
    rotated = h.run("config:set", backend.app, "SECRET_KEY=" + "r" * 64)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    exported = h.run("powersync:export", name)
    assert exported.returncode == 0, exported.stderr
    assert "r" * 64 not in exported.stdout and backend.secret_key in exported.stdout


def test_an_adopted_instance_exports_without_its_secrets_and_names_the_vars_a_new_host_needs(harness):
    """A Jeeves deployment with a second JWKS key read by `!env PS_OLD_SECRET_KEY_B64`: neither key,
    the DSN nor the API token is in the file, and the variable is listed for the importing host."""
    h = harness
    d = deploy_jeeves(h, "config-b64", old_key=True)
    app = d.powersync_app
    adopted = h.run("powersync:adopt", app)
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    api_token = next(json.loads(row[5])["api_token"] for row in journal_rows(h) if row[1] == app and row[3] == "instance.adopted")
    dsn_password = urlsplit(app_config(h, app)["PS_DATA_SOURCE_URI"]).password

    exported = h.run("powersync:export", app)
    assert exported.returncode == 0, exported.stderr
    for secret in (d.secret_key, b64url_nopad(d.secret_key), d.old_secret, b64url_nopad(d.old_secret), api_token, dsn_password):
        assert len(secret) >= 8 and secret not in exported.stdout + exported.stderr
    document = json.loads(exported.stdout)
    assert document["env_required"] == ["PS_OLD_SECRET_KEY_B64"]
    assert "The importing host must set: PS_OLD_SECRET_KEY_B64" in exported.stderr
    assert {f"revision 1 (instance.adopted) {field}" for field in ("api_token", "secret_fingerprint", "source_fingerprint")} \
        <= set(document["withheld"])
    adopted_event = document["events"][0]
    assert adopted_event["payload"]["rules"] == d.rules
    assert adopted_event["payload"]["extras"]["client_auth"]["jwks"]["keys"][1]["k"] == {"$env": "PS_OLD_SECRET_KEY_B64"}
    refused(h, ("powersync:import", "--link", d.backend_app), exported.stdout, f"Instance {app} already exists on this host")
