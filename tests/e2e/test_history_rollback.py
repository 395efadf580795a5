"""Issue 4: history with statuses, --show, --diff, rollback-rules, and side-effect-free dry runs."""
import json

from tests.e2e.conftest import RULES, RULES_2, app_config, create_instance, history, make_backend, snapshot
from tests.e2e.test_rules_api import current

BROKEN = """bucket_definitions:
  joined:
    data:
      - SELECT * FROM todos JOIN lists ON todos.id = lists.id
"""
READ_ONLY = {
    "apps:exists", "config:export", "config:keys", "ports:report", "domains:report", "certs:report",
    "postgres:exists", "postgres:info", "postgres:app-links", "postgres:connect", "config:get", "scheduler:report",
    "docker-options:list",
}


def assert_dry_run_changes_nothing(h, args, apps, input=None):
    before = snapshot(h, *apps)
    calls_before = len(h.calls("dokku"))
    result = h.run(*args, "--dry-run", input=input)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Plan" in result.stdout
    made = [call["argv"][0] for call in h.calls("dokku")[calls_before:]]
    assert snapshot(h, *apps) == before
    assert made[0].startswith("powersync:") and set(made[1:]) <= READ_ONLY, made
    return result.stdout


def test_history_rollback_and_dry_runs(harness, source):
    h = harness
    backend = make_backend(h, source)
    name = create_instance(h)
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    assert_dry_run_changes_nothing(h, ["powersync:link", name, backend.app], [name, backend.app])
    assert h.run("powersync:link", name, backend.app).returncode == 0
    config_at_r1 = app_config(h, name)["POWERSYNC_CONFIG_B64"]
    out = assert_dry_run_changes_nothing(h, ["powersync:set-rules", name], [name, backend.app], input=RULES_2)
    assert f"+ deploy rules on {name} r2 through the service's API (no restart)" in out and "[restarts]" not in out
    assert h.run("powersync:set-rules", name, input=RULES_2).returncode == 0

    # Rules the service would reject at start, on a stopped instance: the image's own parser
    # refuses them before anything is recorded (they used to become a failed r3).
    assert h.run("ps:stop", name).returncode == 0
    refused = h.run("powersync:set-rules", name, input=BROKEN)
    assert refused.returncode == 1 and "Must SELECT from a single table" in refused.stderr

    rows = history(h, name)
    assert [(row["event"], row["status"], row["rules_revision"]) for row in rows] == [
        ("instance.created", "applied", None),
        ("rules.set", "stored", "r1"),
        ("backend.linked", "applied", None),
        ("rules.activated", "observed", None),
        ("rules.set", "applied", "r2"),
        ("rules.activated", "observed", None),
    ]
    assert rows[4]["description"] == "Set rules (+1, -0)"
    assert [row["rules_revision"] for row in history(h, name, "--rules")] == ["r1", "r2"]
    assert history(h, name, "--limit", "1") == rows[-1:]
    assert json.loads(h.run("powersync:history", "never-created", "--format", "json").stdout) == []

    diff = h.run("powersync:history", name, "--diff", "r1..r2").stdout
    assert diff.startswith("--- r1\n+++ r2\n") and "+  global:" in diff

    shown = json.loads(h.run("powersync:history", name, "--show", str(rows[4]["revision"]), "--format", "json").stdout)
    assert shown["event"]["type"] == "rules.set" and shown["state"]["rules-revision"] == "r2"
    assert shown["state"]["api-token"] == "*****"

    # Rolling back to r2 (what runs now) is a no-op; the default target is r1.
    result = h.run("powersync:rollback-rules", name, "--to", "r2", "--force")
    assert result.returncode == 0 and "already runs the rules of r2" in result.stdout
    out = assert_dry_run_changes_nothing(h, ["powersync:rollback-rules", name], [name, backend.app])
    assert "Plan: rules r2 -> r1, deployed through the service's API, backend unchanged" in out and "-  global:" in out
    refused = h.run("powersync:rollback-rules", name)
    assert refused.returncode == 1 and "use --force" in refused.stderr

    assert h.run("ps:start", name).returncode == 0
    deploys = len(h.deploys(name))
    result = h.run("powersync:rollback-rules", name, "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(h.deploys(name)) == deploys  # through the deploy API: no restart
    assert app_config(h, name)["POWERSYNC_CONFIG_B64"] == config_at_r1  # the config carries no rules
    assert current(h, name)["current"]["content"] == RULES  # byte-identical rules
    last = [row for row in history(h, name) if row["event"] == "rules.set"][-1]
    assert (last["description"], last["status"], last["rules_revision"]) == ("Rolled back to r1", "applied", "r3")

    bad = h.run("powersync:rollback-rules", name, "--to", "r9", "--force")
    assert bad.returncode == 1 and "no rules revision r9" in bad.stderr

    # Unlink and destroy: history stays readable afterwards.
    assert_dry_run_changes_nothing(h, ["powersync:unlink", name, backend.app], [name, backend.app])
    assert h.run("powersync:unlink", name, backend.app).returncode == 0
    assert_dry_run_changes_nothing(h, ["powersync:destroy", name, "--force"], [name])
    assert h.run("powersync:destroy", name, "--force").returncode == 0
    events = [row["event"] for row in history(h, name)]
    assert events[-2:] == ["backend.unlinked", "instance.destroyed"]
