"""`powersync:status --all` through dokku: one line per instance, the linked one probed through
its container (readiness, diagnostics with the active rules' content compared byte for byte
with the journal's), the stored one not deployed; `--format json`; a name and --all exclude
each other."""
import json

from tests.e2e.conftest import RULES, create_instance, linked_instance


def test_status_all_shows_every_instance_and_whether_its_rules_are_active(harness, source):
    h = harness
    running, backend = linked_instance(h, source)
    stored = create_instance(h)
    assert h.run("powersync:set-rules", stored, input=RULES).returncode == 0
    bare = create_instance(h)

    result = h.run("powersync:status", "--all", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows[running]["state"] == "running"
    assert rows[running]["linked_backend"] == backend.app
    assert (rows[running]["rules_revision"], rows[running]["rules_on_service"], rows[running]["ready"]) == ("r1", "active", True)
    assert isinstance(rows[running]["lag_bytes"], int) and rows[running]["image_version"] == "1.25.0"
    assert rows[running]["running_image"].startswith("dokku-powersync/powersync-service:1.25.0-")
    assert {key: rows[stored][key] for key in ("state", "rules_revision", "rules_on_service", "ready", "lag_bytes")} == {
        "state": "not deployed", "rules_revision": "r1", "rules_on_service": None, "ready": None, "lag_bytes": None,
    }
    assert (rows[bare]["state"], rows[bare]["rules_revision"]) == ("not deployed", None)
    assert "token" not in result.stdout.lower() and backend.secret_key not in result.stdout

    text = h.run("powersync:status", "--all")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("=====> PowerSync instances: ")
    assert lines[1].split() == ["NAME", "STATE", "IMAGE", "RULES", "ON", "SERVICE", "READY", "LAG", "ERRORS"]
    line = next(line for line in lines if line.startswith(running + " "))
    assert line.split()[:6] == [running, "running", "1.25.0", "r1", "active", "yes"]
    assert next(line for line in lines if line.startswith(stored + " ")).split() == [
        stored, "not", "deployed", "1.25.0", "r1", "-", "-", "-", "-"]


def test_status_takes_a_name_or_all(harness, instance):
    neither = harness.run("powersync:status")
    assert neither.returncode == 2 and "Give an instance name, or --all" in neither.stderr
    both = harness.run("powersync:status", instance, "--all")
    assert both.returncode == 2 and "Give an instance name, or --all" in both.stderr
