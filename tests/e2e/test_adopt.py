"""Issue 5: adopt a Jeeves-made deployment with no restart, no reprocessing and no URL change."""
import json

import pytest

from tests.e2e.conftest import app_config, history, journal_rows, make_backend, snapshot, unique
from tests.e2e.jeeves import deploy_jeeves

READ_ONLY = {
    "apps:exists", "config:export", "config:keys", "postgres:info", "git:report", "storage:list", "domains:report",
    "ports:report", "postgres:connect", "postgres:app-links", "scheduler:report",
}


@pytest.mark.parametrize("layout", ["config-b64", "config-b64-old-key", "config-path", "config-path-rules-file"])
def test_adopt_a_jeeves_deployment(harness, layout):
    h = harness
    rules_file, old_key = layout.endswith("-rules-file"), layout.endswith("-old-key")
    layout = layout.removesuffix("-rules-file").removesuffix("-old-key")
    d = deploy_jeeves(h, layout, inert_mount=layout == "config-b64", rules_file=rules_file, old_key=old_key)
    app, backend = d.powersync_app, d.backend_app
    slots_before = d.current_slots()
    deploys_before = (len(h.deploys(app)), len(h.deploys(backend)))

    dry = h.run("powersync:adopt", app, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "remove PS_JEEVES_SECRET_KEY_B64" in dry.stdout
    assert "unmount the inert storage mount" in dry.stdout
    if layout == "config-path":
        assert "remove POWERSYNC_CONFIG_PATH" in dry.stdout
    assert ("carry the rules inline instead of in /config/sync-rules.yaml" in dry.stdout) == rules_file
    assert not any(row[1] == app for row in journal_rows(h))
    assert ("Other JWKS keys kept as they are: " + f"{d.product}-old" in dry.stdout) == old_key

    before = snapshot(h, app, backend)
    calls_before = len(h.calls("dokku"))
    result = h.run("powersync:adopt", app)
    assert result.returncode == 0, result.stdout + result.stderr
    made = [call["argv"][0] for call in h.calls("dokku")[calls_before:]]
    assert made[0] == "powersync:adopt" and set(made[1:]) <= READ_ONLY, made
    after = snapshot(h, app, backend)
    assert after["configs"] == before["configs"] and after["containers"] == before["containers"]
    assert (len(h.deploys(app)), len(h.deploys(backend))) == deploys_before  # zero restarts
    assert d.current_slots() == slots_before
    assert d.secret_key not in result.stdout + result.stderr

    info = json.loads(h.run("powersync:info", app, "--format", "json").stdout)
    assert (info["linked-backend"], info["rules-revision"], info["kid"], info["audience"]) == (backend, "r1", d.kid, d.audience)
    assert info["slot-prefix"] == "powersync_" and info["storage"] == "same-database"
    rows = history(h, app)
    assert rows[0]["event"] == "instance.adopted" and rows[0]["description"].startswith(f"Adopted from app {app}")
    again = h.run("powersync:adopt", app)
    assert again.returncode == 1 and "already managed" in again.stderr

    # The first managed change: same rules bytes, one restart, no new slot, same URL, leftovers gone.
    tls_enables = h.app_state(app)["letsencrypt_enables"]
    result = h.run("powersync:set-rules", app, input=d.rules)
    assert result.returncode == 0, result.stdout + result.stderr
    # No certificate request on publish (finding 4): Dokku keeps serving the installed certificate,
    # and the https mapping letsencrypt's certs:add made survives.
    assert h.app_state(app)["letsencrypt_enables"] == tls_enables
    assert h.run("ports:report", app, "--ports-map").stdout.split() == ["http:80:8080", "https:443:8080"]
    assert len(h.deploys(app)) == deploys_before[0] + 1 and len(h.deploys(backend)) == deploys_before[1]
    assert d.current_slots() == slots_before
    env = app_config(h, app)
    assert "PS_JEEVES_SECRET_KEY_B64" not in env and "POWERSYNC_CONFIG_PATH" not in env
    assert h.run("storage:list", app, "--format", "json").stdout.strip() in ("", "[]")
    assert app_config(h, backend)["POWERSYNC_URL"] == d.powersync_url
    assert d.sync_status(d.token())[0] == 200
    if old_key:  # the key being rotated out is still accepted, and its variable kept
        assert d.sync_status(d.token(kid=f"{d.product}-old", secret=d.old_secret))[0] == 200
        assert "PS_OLD_SECRET_KEY_B64" in env
    # Now fully managed: the same bytes again are a no-op.
    assert "Rules unchanged" in h.run("powersync:set-rules", app, input=d.rules).stdout
    assert len(h.deploys(app)) == deploys_before[0] + 1

    if layout == "config-b64":
        changed = d.rules + "  # comment\n"
        assert h.run("powersync:set-rules", app, input=changed).returncode == 0
        rollback = h.run("powersync:rollback-rules", app, "--to", "r1", "--force")
        assert rollback.returncode == 0, rollback.stdout + rollback.stderr
        rows = history(h, app)
        assert [row["description"] for row in rows if row["event"] == "rules.set"][-1] == "Rolled back to r1"
        assert rows[-1]["event"] == "rules.activated"  # through the deploy API, followed to activation
        assert d.sync_status(d.token())[0] == 200

    assert h.run("powersync:unlink", app, backend).returncode == 0
    assert d.current_slots() == []
    assert h.run("powersync:destroy", app, "--force").returncode == 0
    assert h.run("apps:exists", app).returncode == 20


def test_adopt_refusals_change_nothing(harness):
    h = harness
    missing = h.run("powersync:adopt", unique("nope"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr

    plain = make_backend(h, None)
    not_ps = h.run("powersync:adopt", plain.app)
    assert not_ps.returncode == 1 and "no running web container" in not_ps.stderr

    d = deploy_jeeves(h, "config-b64")
    assert h.run("config:set", "--no-restart", d.backend_app, "SECRET_KEY=" + "x" * 80).returncode == 0
    before = snapshot(h, d.powersync_app, d.backend_app)
    inconsistent = h.run("powersync:adopt", d.powersync_app)
    assert inconsistent.returncode == 1 and "Inconsistent" in inconsistent.stderr
    assert snapshot(h, d.powersync_app, d.backend_app) == before
