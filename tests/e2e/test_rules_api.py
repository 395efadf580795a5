"""Issue 13/14: rules go through PowerSync's own deploy API (no restart), the journal stays the
truth (reconcile redeploys on drift), an instance whose config still carries rules moves over
with one restart and no reprocessing, and a reprocessing change reports progress and records
when the new rules became active."""
import base64
import json
import time

import docker

from tests.e2e.conftest import (
    RULES, RULES_2, app_config, create_instance, history, linked_instance, make_backend, make_source,
)


def service_api(h, name: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """An admin API request from inside the instance container (the token travels in the exec
    environment, never on a command line)."""
    container = docker.from_env().containers.get(f"{name}.web.1")
    script = (
        "fetch('http://127.0.0.1:8080'+process.env.P,{method:process.env.M,headers:{Authorization:'Bearer '+process.env.T,"
        "'Content-Type':'application/json'},body:process.env.B||undefined}).then(async r=>"
        "process.stdout.write(JSON.stringify({status:r.status,body:await r.text()})))"
    )
    environment = {"T": app_config(h, name)["PS_API_TOKEN"], "P": path, "M": method, "B": json.dumps(body) if body else ""}
    answer = json.loads(container.exec_run(["node", "-e", script], environment=environment).output.decode())
    return answer["status"], json.loads(answer["body"] or "{}")


def current(h, name: str) -> dict:
    status, body = service_api(h, name, "GET", "/api/sync-rules/v1/current")
    assert status == 200, body
    return body["data"]


def container_start(name: str) -> tuple[str, str, int]:
    container = docker.from_env().containers.get(f"{name}.web.1")
    return container.id, container.attrs["State"]["StartedAt"], container.attrs["RestartCount"]


def info(h, name: str, flag: str) -> str:
    return h.run("powersync:info", name, flag).stdout.strip()


def wait_for(predicate, timeout: float = 60):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.5)


def test_a_rules_change_is_deployed_through_the_api_byte_for_byte_with_no_restart(harness, source):
    h = harness
    name, _ = linked_instance(h, source)
    config = base64.b64decode(app_config(h, name)["POWERSYNC_CONFIG_B64"]).decode()
    assert "sync_config" not in config and "bucket_definitions" not in config  # rules left the config
    assert current(h, name)["current"]["content"] == RULES
    started, deploys = container_start(name), len(h.deploys(name))
    odd = RULES_2 + "# trailing spaces and no newline at the end   "

    result = h.run("powersync:set-rules", name, input=odd)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "through the service's API" in result.stdout and "r2 is active" in result.stdout
    assert (container_start(name), len(h.deploys(name))) == (started, deploys)  # 0 restarts
    served = current(h, name)
    assert served["current"]["content"] == odd and served["next"] is None
    rows = history(h, name)
    assert [(row["event"], row["status"]) for row in rows[-2:]] == [("rules.set", "applied"), ("rules.activated", "observed")]
    assert rows[-1]["description"].startswith("Rules r2 active on the service")
    assert info(h, name, "--rules-state") == "active"

    rolled = h.run("powersync:rollback-rules", name, "--to", "r1", "--force")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert current(h, name)["current"]["content"] == RULES  # the target's exact bytes
    assert (container_start(name), len(h.deploys(name))) == (started, deploys)


def test_reconcile_redeploys_the_journal_rules_after_a_deploy_made_behind_its_back(harness, source):
    h = harness
    name, _ = linked_instance(h, source)
    status, body = service_api(h, name, "POST", "/api/sync-rules/v1/deploy", {"content": RULES_2})
    assert status == 200, body
    wait_for(lambda: current(h, name)["current"]["content"] == RULES_2)
    started = container_start(name)

    dry = h.run("powersync:reconcile", name, "--dry-run")
    assert dry.returncode == 0 and "+ deploy rules on " + name in dry.stdout and "differ from r1" in dry.stdout
    assert current(h, name)["current"]["content"] == RULES_2  # a dry run deploys nothing

    result = h.run("powersync:reconcile", name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert current(h, name)["current"]["content"] == RULES and container_start(name) == started, result.stdout
    assert [row["event"] for row in history(h, name)[-2:]] == ["config.published", "rules.activated"]
    again = h.run("powersync:reconcile", name)
    assert again.returncode == 0 and "matches its journal" in again.stdout


def test_an_instance_with_rules_in_its_config_moves_over_with_one_restart_and_no_reprocessing(harness, source):
    """What the plugin published before rules moved to the deploy API: the rules inside the config."""
    h = harness
    name, _ = linked_instance(h, source)
    rendered = base64.b64decode(app_config(h, name)["POWERSYNC_CONFIG_B64"]).decode()
    assert rendered.endswith("\n}\n")
    old_style = rendered[: -len("\n}\n")] + ',\n  "sync_config": {"content": ' + json.dumps(RULES) + "}\n}\n"
    assert h.run("config:set", name, "POWERSYNC_CONFIG_B64=" + base64.b64encode(old_style.encode()).decode()).returncode == 0
    wait_for(lambda: service_api(h, name, "GET", "/probes/readiness")[0] == 200)
    refused, body = service_api(h, name, "POST", "/api/sync-rules/v1/deploy", {"content": RULES_2})
    assert (refused, body["error"]["code"]) == (422, "PSYNC_S4105")  # rules in the config disable the API
    slot = current(h, name)["current"]["slot_name"]
    deploys = len(h.deploys(name))

    result = h.run("powersync:reconcile", name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(h.deploys(name)) == deploys + 1  # one restart
    after = current(h, name)
    assert (after["current"]["slot_name"], after["current"]["content"], after["next"]) == (slot, RULES, None)  # no reprocess
    started = container_start(name)
    changed = h.run("powersync:set-rules", name, input=RULES_2)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert container_start(name) == started and current(h, name)["current"]["content"] == RULES_2


def linked_standin(h, service: str, knob: str) -> str:
    """An instance with RULES linked to a new backend on `service`, its stand-in given `knob`
    (NAME=VALUE, one of the stand-in's test knobs) before it first starts."""
    backend = make_backend(h, service)
    name = create_instance(h)
    assert h.run("config:set", "--no-restart", name, knob).returncode == 0
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    linked = h.run("powersync:link", name, backend.app)
    assert linked.returncode == 0, linked.stdout + linked.stderr
    return name


def slow_snapshot_instance(h, service: str) -> str:
    """Its stand-in copies 4,000 rows a second (10,000 per chunk): a reprocessing change deploys
    for some seconds."""
    return linked_standin(h, service, "POWERSYNC_STANDIN_SNAPSHOT_ROWS_PER_SECOND=4000")


def test_a_reprocessing_change_reports_progress_and_no_wait_leaves_it_to_status(harness):
    h = harness
    service = make_source(h)
    rows = "INSERT INTO todos SELECT 't' || g, 'user-1', 'x' FROM generate_series(1, 40000) g;\nANALYZE todos;\n"
    assert h.run("postgres:connect", service, input=rows).returncode == 0
    name = slow_snapshot_instance(h, service)  # 10 s per snapshot of todos

    result = h.run("powersync:set-rules", name, input=RULES_2, env={"POWERSYNC_RULES_PROGRESS_SECONDS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    progress = [line for line in result.stdout.splitlines() if "reprocessing:" in line]
    assert progress and "rows replicated" in " ".join(progress) and "the previous rules keep serving" in progress[0]
    assert result.stdout.index("reprocessing:") < result.stdout.index("r2 is active")
    activated = history(h, name)[-1]
    assert activated["event"] == "rules.activated" and "after" in activated["description"]

    quick = h.run("powersync:set-rules", name, "--no-wait", input=RULES)
    assert quick.returncode == 0, quick.stdout + quick.stderr
    assert "Not waiting (--no-wait)" in quick.stdout and "is active" not in quick.stdout
    assert info(h, name, "--rules-state") == "deploying (r2 serving)"
    status = h.run("powersync:status", name)
    assert "r3 deploying" in status.stdout, status.stdout
    assert current(h, name)["current"]["content"] == RULES_2  # the old rules serve meanwhile
    wait_for(lambda: current(h, name)["current"]["content"] == RULES)
    assert h.run("powersync:reconcile", name).returncode == 0
    assert info(h, name, "--rules-state") == "active"
    assert history(h, name)[-1]["event"] == "rules.activated"


def test_rules_reading_a_table_outside_the_publication_activate_with_a_warning(harness):
    # As the real PowerSync 1.25.0 image does (built from source and observed): the table's fatal
    # error is reported while the rules deploy, the other tables are copied, and the rules become
    # active with the error kept in their diagnostics. set-rules says so instead of failing.
    h = harness
    service = make_source(h, publication=False)
    setup = ("CREATE PUBLICATION powersync FOR TABLE todos;\n"
             "INSERT INTO todos SELECT 't' || g, 'user-1', 'x' FROM generate_series(1, 20000) g;\nANALYZE todos;\n")
    assert h.run("postgres:connect", service, input=setup).returncode == 0
    # a snapshot of some seconds, so that set-rules sees the error while the rules deploy
    name = slow_snapshot_instance(h, service)

    result = h.run("powersync:set-rules", name, input=RULES_2)  # RULES_2 also reads lists
    assert result.returncode == 0, result.stdout + result.stderr
    assert "r2 is active" in result.stdout
    assert ("r2 is active, but the service reports: Table \"public\".\"lists\" is not part of publication 'powersync'. "
            "Run: `ALTER PUBLICATION powersync ADD TABLE \"public\".\"lists\"`.") in result.stderr
    assert current(h, name)["current"]["content"] == RULES_2
    assert history(h, name)[-1]["event"] == "rules.activated"


def test_rules_the_service_retries_stay_deploying_and_activate_once_the_slot_is_free(harness):
    # As the real 1.25.0 image (source and an observed run, tests/standin/README.md "Slot errors"):
    # with every replication slot of the source in use the deploy is accepted, the new rules stay
    # deploying with a fatal `[PSYNC_S1120]` error, the old ones keep serving, and the service
    # retries every 30 s (here 8 s, the stand-in's knob) without giving up; the error stays listed
    # after a slot is freed until the retry copies rows. So the rules are not failed: set-rules
    # says the service is retrying (exit 1: they are not active), the journal keeps r2 deploying,
    # reconcile does not fail on the error while it lasts, and records r2 active once it is gone.
    h = harness
    service = make_source(h)
    name = linked_standin(h, service, "POWERSYNC_STANDIN_RETRY_SECONDS=8")
    fill = ("SELECT pg_create_logical_replication_slot('filler_' || g, 'pgoutput') FROM generate_series(1, "
            "(SELECT current_setting('max_replication_slots')::int - count(*) FROM pg_replication_slots)::int) g;\n")
    assert h.run("postgres:connect", service, input=fill).returncode == 0
    quick = {"POWERSYNC_RULES_RETRY_WAIT": "3"}  # how long the error must last before the command ends

    result = h.run("powersync:set-rules", name, input=RULES_2, env=quick)
    assert result.returncode == 1, result.stdout + result.stderr
    cause = "[PSYNC_S1120] Postgres error while replicating (all replication slots are in use)"
    assert f"r2 is deploying on {name}, but the service cannot replicate it yet and retries: {cause}" in result.stderr
    assert "r1 keeps serving" in result.stderr and f"dokku powersync:status {name}" in result.stderr
    assert "did not become active" not in result.stderr
    assert current(h, name)["current"]["content"] == RULES and current(h, name)["next"]["content"] == RULES_2
    events = [e["event"] for e in history(h, name)]
    assert "rules.activation_failed" not in events and events[-1] != "rules.activated"
    assert info(h, name, "--rules-state") == "deploying (r1 serving)"

    still = h.run("powersync:reconcile", name, env=quick)  # the cause is still there: not a failure
    assert still.returncode == 0, still.stdout + still.stderr
    assert f"r2 is deploying on {name}, but the service cannot replicate it yet and retries: {cause}" in still.stderr
    assert info(h, name, "--rules-state") == "deploying (r1 serving)"

    free = "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'filler_%';\n"
    assert h.run("postgres:connect", service, input=free).returncode == 0
    # the error is listed until the next attempt (up to 8 s): reconcile waits for the retry
    reconciled = h.run("powersync:reconcile", name)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert current(h, name)["current"]["content"] == RULES_2
    assert history(h, name)[-1]["event"] == "rules.activated"
    assert info(h, name, "--rules-state") == "active"
