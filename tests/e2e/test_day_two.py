"""Issue 6: upgrade, rotation on post-config-update, backend destroy, reconcile after a crash."""
import json
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from tests.e2e.conftest import (
    RULES, RULES_2, app_config, create_instance, history, journal_rows, linked_instance, make_source, slots,
    sync_stream_status,
)
from tests.images.names import STANDIN_REPO


def kill_set_rules_after_its_append(h, name, rules) -> int:
    """SIGKILL a set-rules (and its children) the moment its intent is in the journal; return the
    journal's length before it. The test takes the journal's write lock as soon as it sees the
    intent, so the command cannot record its outcome first (its deploy takes milliseconds)."""
    before = len(journal_rows(h))
    process = subprocess.Popen(
        ["dokku", "powersync:set-rules", name], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env=h.env, start_new_session=True,
    )
    process.stdin.write(rules.encode())
    process.stdin.close()
    holder = sqlite3.connect(Path(h.root) / "var/lib/dokku/services/powersync/journal.sqlite3", timeout=10,
                             isolation_level=None)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if holder.execute("SELECT count(*) FROM events").fetchone()[0] > before:
            holder.execute("BEGIN IMMEDIATE")
            break
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if holder.in_transaction:
        holder.execute("ROLLBACK")
    holder.close()
    return before


def test_upgrade_is_one_restart_and_a_downgrade_is_refused(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    deploys = len(h.deploys(name))
    dry = h.run("powersync:upgrade", name, "--image-version", "1.26.0", "--dry-run")
    assert dry.returncode == 0 and f"1.25.0 -> {STANDIN_REPO}:1.26.0" in dry.stdout
    assert len(h.deploys(name)) == deploys
    result = h.run("powersync:upgrade", name, "--image-version", "1.26.0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(h.deploys(name)) == deploys + 1
    assert h.run("powersync:info", name, "--image-version").stdout.strip() == "1.26.0"
    assert "1.26.0" in h.run("powersync:status", name).stdout
    status = json.loads(h.run("powersync:status", name, "--format", "json").stdout)
    prefix = h.run("powersync:info", name, "--slot-prefix").stdout.strip()
    assert status["ready"] and status["config-drift"] is False
    assert status["active-rules"]["slot"].startswith(prefix) and status["replication-errors"] == []
    assert [slot["slot"] for slot in status["slots"]] == [status["active-rules"]["slot"]]

    same = h.run("powersync:upgrade", name, "--image-version", "1.26.0")
    assert same.returncode == 0 and "nothing to upgrade" in same.stdout
    down = h.run("powersync:upgrade", name, "--image-version", "1.25.0")
    assert down.returncode == 1 and "not reversible" in down.stderr and "--force" in down.stderr
    assert len(h.deploys(name)) == deploys + 1
    assert history(h, name)[-1]["event"] == "image.upgraded"


def test_secret_rotation_follows_the_backend(harness, source):
    h = harness
    name, backend = linked_instance(h, source, "--kid", "k1")
    old_token = backend.token(backend.app, "k1")
    assert sync_stream_status(name, old_token)[0] == 200
    deploys = len(h.deploys(name))

    new_secret = "n" * 70
    result = h.run("config:set", "--no-restart", backend.app, f"SECRET_KEY={new_secret}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert new_secret not in result.stdout + result.stderr or "SECRET_KEY:" in result.stdout  # Dokku echoes its own var
    assert len(h.deploys(name)) == deploys + 1
    backend.secret_key = new_secret
    assert sync_stream_status(name, backend.token(backend.app, "k1"))[0] == 200
    assert sync_stream_status(name, old_token)[0] == 401
    last = history(h, name)[-1]
    assert (last["event"], last["status"]) == ("backend.rotated", "applied")

    # Unrelated keys and the plugin's own writes do not rotate.
    assert h.run("config:set", "--no-restart", backend.app, "OTHER=1").returncode == 0
    assert len(h.deploys(name)) == deploys + 1

    # auto-rotate off: the instance goes stale until rotated by hand.
    assert h.run("powersync:set", name, "auto-rotate", "false").returncode == 0
    assert h.run("config:set", "--no-restart", backend.app, "SECRET_KEY=" + "m" * 70).returncode == 0
    assert len(h.deploys(name)) == deploys + 1
    assert "SECRET_KEY set" in h.run("powersync:info", name, "--stale").stdout
    assert h.run("powersync:rotate", name).returncode == 0
    assert h.run("powersync:info", name, "--stale").stdout.strip() == "-"
    backend.secret_key = "m" * 70
    assert sync_stream_status(name, backend.token(backend.app, "k1"))[0] == 200

    # The backend losing its secret leaves the instance alone, loudly; config:unset still succeeds.
    unset = h.run("config:unset", "--no-restart", backend.app, "SECRET_KEY")
    assert unset.returncode == 0
    assert h.run("powersync:set", name, "auto-rotate", "true").returncode == 0
    assert sync_stream_status(name, backend.token(backend.app, "k1"))[0] == 200


def test_rotation_follows_a_new_database_url_on_the_same_server_only(harness):
    """rotate re-derives from a changed DATABASE_URL when it still reaches the linked
    dokku-postgres service (here: a new password), and refuses one on another server with
    nothing changed (rotate asks dokku-postgres only when the URL is not the one it verified)."""
    h = harness
    own = make_source(h)  # its password changes below: not the module's shared source
    name, backend = linked_instance(h, own)
    assert h.run("powersync:set", name, "auto-rotate", "false").returncode == 0
    dsn = h.run("postgres:info", own, "--dsn").stdout.strip()
    other = make_source(h)
    other_dsn = h.run("postgres:info", other, "--dsn").stdout.strip()
    deploys, before = len(h.deploys(name)), app_config(h, name)

    assert h.run("config:set", "--no-restart", backend.app, f"DATABASE_URL={other_dsn}").returncode == 0
    refused = h.run("powersync:rotate", name)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"{backend.app}'s DATABASE_URL now points at another database server" in refused.stderr
    assert len(h.deploys(name)) == deploys and app_config(h, name) == before

    password = "p" + uuid.uuid4().hex
    sql = f"ALTER USER postgres WITH PASSWORD '{password}';\n"
    assert h.run("postgres:connect", own, input=sql).returncode == 0
    old_password = urlsplit(dsn).password
    new_dsn = dsn.replace(f":{old_password}@", f":{password}@")
    assert h.run("config:set", "--no-restart", backend.app, f"DATABASE_URL={new_dsn}").returncode == 0
    result = h.run("powersync:rotate", name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert password not in result.stdout + result.stderr
    assert len(h.deploys(name)) == deploys + 1
    assert urlsplit(app_config(h, name)["PS_DATA_SOURCE_URI"]).password == password
    assert sync_stream_status(name, backend.token(backend.app, None))[0] == 200
    last = history(h, name)[-1]
    assert (last["event"], last["status"]) == ("backend.rotated", "applied")


def test_destroying_a_linked_backend_unlinks_it(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    prefix = h.run("powersync:info", name, "--slot-prefix").stdout.strip()
    result = h.run("apps:destroy", backend.app, "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    assert h.run("powersync:links", name).stdout.strip() == ""
    rows = history(h, name)
    assert (rows[-1]["event"], rows[-1]["status"]) == ("backend.unlinked", "applied")
    assert not any(slot.startswith(prefix) for slot in slots(h, source))
    assert h.run("powersync:destroy", name, "--force").returncode == 0


def test_apps_destroy_of_an_instance_is_recorded(harness):
    h = harness
    name = create_instance(h)
    assert h.run("apps:destroy", name, "--force").returncode == 0
    assert h.run("powersync:exists", name).returncode == 1
    assert history(h, name)[-1]["event"] == "instance.destroyed"


def test_reconcile_repairs_a_command_killed_after_the_append(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    before = kill_set_rules_after_its_append(h, name, RULES_2)
    # The intent, and no outcome (counted apart: a failing assert would print the rows, tokens included)
    after = len(journal_rows(h))
    assert after == before + 1
    assert h.run("powersync:info", name, "--pending-change").stdout.strip() != "-"
    assert history(h, name)[-1]["status"] == "pending"

    result = h.run("powersync:reconcile", name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert h.run("powersync:info", name, "--pending-change").stdout.strip() == "-"
    rows = history(h, name)
    assert [row["event"] for row in rows[-2:]] == ["rules.set", "rules.activated"]  # deployed, then followed
    assert (rows[-2]["status"], rows[-2]["rules_revision"]) == ("applied", "r2")
    assert sync_stream_status(name, backend.token(backend.app, None))[0] == 200
    assert "matches its journal" in h.run("powersync:reconcile", name).stdout


def test_global_image_version_applies_to_new_instances_only(harness):
    h = harness
    existing = create_instance(h)
    assert h.run("powersync:set", "--global", "image-version", "not-a-version").returncode == 1
    try:
        assert h.run("powersync:set", "--global", "image-version", "1.26.0").returncode == 0
        new = create_instance(h)
        assert h.run("powersync:info", new, "--image-version").stdout.strip() == "1.26.0"
        assert h.run("powersync:info", existing, "--image-version").stdout.strip() == "1.25.0"
        assert "_global" not in h.run("powersync:list").stdout
    finally:
        assert h.run("powersync:set", "--global", "image-version", "1.25.0").returncode == 0


def test_the_next_command_reconciles_an_interrupted_one(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    kill_set_rules_after_its_append(h, name, RULES_2)
    result = h.run("powersync:set-rules", name, input=RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "was interrupted: reconciling before this command" in result.stdout
    rows = history(h, name)
    assert [(r["rules_revision"], r["status"]) for r in rows if r["event"] == "rules.set"][-2:] == [("r2", "applied"), ("r3", "applied")]


def test_unlink_leaves_a_powersync_url_the_operator_pointed_elsewhere(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    assert h.run("config:set", "--no-restart", backend.app, "POWERSYNC_URL=https://cloud.example.test").returncode == 0
    result = h.run("powersync:unlink", name, backend.app)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"POWERSYNC_URL on {backend.app} no longer points at {name}" in result.stdout + result.stderr
    assert app_config(h, backend.app)["POWERSYNC_URL"] == "https://cloud.example.test"
    assert h.run("powersync:destroy", name, "--force").returncode == 0
