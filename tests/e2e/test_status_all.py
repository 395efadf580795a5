"""`powersync:status --all` through dokku: one line per instance, the linked one probed through
its container (readiness, diagnostics with the active rules' content compared byte for byte
with the journal's), the stored one not deployed; `--format json`; a name and --all exclude
each other."""
import json
import time

from tests.e2e.conftest import RULES, create_instance, linked_instance, make_backend
from tests.harness.dockerproxy import DockerProxy


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
    assert lines[1].split() == ["NAME", "STATE", "IMAGE", "RULES", "ON", "SERVICE", "READY", "LAG", "ERRORS", "CHECKED"]
    line = next(line for line in lines if line.startswith(running + " "))
    assert line.split()[:6] == [running, "running", "1.25.0", "r1", "active", "yes"]
    assert next(line for line in lines if line.startswith(stored + " ")).split() == [
        stored, "not", "deployed", "1.25.0", "r1", "-", "-", "-", "-", "-"]


def test_status_takes_a_name_or_all(harness, instance):
    neither = harness.run("powersync:status")
    assert neither.returncode == 2 and "Give an instance name, or --all" in neither.stderr
    both = harness.run("powersync:status", instance, "--all")
    assert both.returncode == 2 and "Give an instance name, or --all" in both.stderr


def test_status_all_reads_the_engines_health_check_instead_of_probing(harness, source):
    """An instance whose image's health check has answered is not probed: no exec in its
    container, one inspect; its rules compared through their digest. Another set of rules makes
    the next check say so."""
    h = harness
    fast = {"POWERSYNC_HEALTH_INTERVAL": "2"}
    backend = make_backend(h, source)
    name = create_instance(h)
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    linked = h.run("powersync:link", name, backend.app, env=fast)  # link publishes: the image with a 2 s check
    assert linked.returncode == 0, linked.stdout + linked.stderr
    container = web_container(name)
    check = container.attrs["Config"]["Healthcheck"]
    assert check["Test"][-2:] == ["/app/health-check.js", "8080"] and check["Interval"] == 2 * 10**9

    wait_for_check(container, after=time.time())  # link returned once the rules were active
    with DockerProxy(h.root) as proxy:
        result = h.run("powersync:status", "--all", "--format", "json", env=proxy.env)
        requests = proxy.requests()
    assert result.returncode == 0, result.stderr
    row = next(row for row in json.loads(result.stdout) if row["name"] == name)
    assert (row["ready"], row["rules_on_service"], row["errors"]) == (True, "active", 0)
    assert isinstance(row["lag_bytes"], int) and row["checked_by"] == "health check" and 0 <= row["checked_seconds_ago"] <= 10
    # other tests' instances on this harness may be probed live (their first check not yet run)
    assert not [r for r in requests if r["path"] == f"/containers/{container.id}/exec"], requests
    assert no_secret_in_answers(container)

    # new rules: a check after them reports their digest (a stale one would read "differs")
    assert h.run("powersync:set-rules", name, input=RULES + "# r2\n").returncode == 0
    wait_for_check(container, after=time.time())
    row = next(row for row in json.loads(h.run("powersync:status", "--all", "--format", "json").stdout) if row["name"] == name)
    assert (row["rules_revision"], row["rules_on_service"]) == ("r2", "active"), row


def web_container(name):
    import docker

    return docker.from_env().containers.get(f"{name}.web.1")


def wait_for_check(container, after=0.0, timeout=40):
    """Until the engine has a health-check answer that ended after `after` (epoch seconds)."""
    from powersync_plugin.adapters.health_check import _epoch

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        log = (container.attrs["State"].get("Health") or {}).get("Log") or []
        if log and (_epoch(log[-1]["End"]) or 0) > after:
            return log[-1]
        time.sleep(0.5)
    raise AssertionError(f"no health check answer within {timeout} s: {container.attrs['State'].get('Health')}")


def no_secret_in_answers(container):
    """The answers the engine keeps hold no token: nothing from the container's PS_ secrets."""
    secrets = [entry.split("=", 1)[1] for entry in container.attrs["Config"]["Env"]
               if entry.startswith(("PS_API_TOKEN=", "PS_SECRET_KEY_B64=", "PS_DATA_SOURCE_URI="))]
    outputs = " ".join(entry["Output"] for entry in container.attrs["State"]["Health"]["Log"])
    return len(secrets) == 3 and not any(secret in outputs for secret in secrets)
