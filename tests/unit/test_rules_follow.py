"""How set-rules follows deploying rules whose replication the service reports failing.

The real 1.25.0 service retries a failed replication (e.g. a slot it cannot create) every 30 s,
never gives up, and lists the error until a retry copies rows, also once the cause is gone
(tests/standin/README.md, "Slot errors"): such an error is not a verdict."""
from types import SimpleNamespace

import pytest

from powersync_plugin import rules_delivery
from powersync_plugin.adapters.powersync_api import ServiceRules
from powersync_plugin.core.state import RulesRevision

OLD, NEW = "old rules", "new rules"
ERROR = {"level": "fatal", "message": "[PSYNC_S1120] Postgres error while replicating"}
REVISION = RulesRevision(number=2, version=5, content=NEW, digest="d" * 64, description="r2")


class Clock:
    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def time(self):
        return 1_000_000.0 + self.now


def run(monkeypatch, service_at, retry_wait="60"):
    """Follow r2 against a service whose state at each moment `service_at(t)` gives as
    (active content, deploying content or None, deploying errors)."""
    clock = Clock()
    monkeypatch.setattr(rules_delivery.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(rules_delivery.time, "sleep", clock.sleep)
    monkeypatch.setattr(rules_delivery.time, "time", clock.time)
    monkeypatch.setenv("POWERSYNC_RULES_RETRY_WAIT", retry_wait)

    class Api:
        def __init__(self, *args):
            pass

        def current_rules(self):
            active, deploying, _ = service_at(clock.now)
            return ServiceRules(active=active, active_slot="ps_1", deploying=deploying, deploying_slot="ps_2")

        def diagnostics(self, rules_content=False):
            _, deploying, errors = service_at(clock.now)
            section = {"connections": [{"slot_name": "ps_2", "tables": []}], "errors": errors}
            return {"data": {"active_sync_rules": {"errors": []}, "deploying_sync_rules": section if deploying else None}}

    monkeypatch.setattr(rules_delivery, "PowerSyncApi", Api)
    lines = []
    out = SimpleNamespace(step=lambda text: lines.append(text), warn=lambda text: lines.append("! " + text))
    logs = '{"level":"error","message":"[ps_2] cause all replication slots are in use"}\n'
    s = SimpleNamespace(out=out, docker=SimpleNamespace(logs_since=lambda container_id, since: logs), waited=0.0)
    state = SimpleNamespace(name="ps", api_token="t", rules_active=1)
    delivery = rules_delivery.Delivery(REVISION, deployed=True, slot="ps_2", started=clock.time())
    return rules_delivery.follow(s, state, "c", delivery), lines


def test_an_error_the_service_retries_then_clears_ends_active(monkeypatch):
    # listed for 40 s (two failed attempts, then a stale error until the retry copies rows)
    def service_at(t):
        if t < 40:
            return OLD, NEW, [ERROR]
        return (OLD, NEW, []) if t < 45 else (NEW, None, [])

    activation, lines = run(monkeypatch, service_at)
    assert activation.state == "active"
    assert any("The service reports an error for r2 and retries it: [PSYNC_S1120] Postgres error while replicating "
               "(all replication slots are in use)" in line for line in lines)
    # while the error is listed nothing replicates: the progress lines say so
    waiting = [line for line in lines if line.startswith("waiting for the service's next attempt at r2: ")]
    assert waiting and all("the previous rules keep serving" in line for line in waiting)
    assert not any(line.startswith("reprocessing:") for line in lines[:lines.index(waiting[-1])])


def test_an_error_lasting_longer_than_the_retry_wait_ends_as_retrying_not_failed(monkeypatch):
    activation, _ = run(monkeypatch, lambda t: (OLD, NEW, [ERROR]), retry_wait="60")
    assert activation.state == "retrying"
    assert activation.reason == "[PSYNC_S1120] Postgres error while replicating (all replication slots are in use)"
    assert 60 <= activation.seconds < 70
    assert rules_delivery.activation_event(activation, rules_delivery.Delivery(REVISION, deployed=True)) is None


@pytest.mark.parametrize("gap", [True, False])
def test_the_retry_wait_counts_from_when_the_error_was_last_absent(monkeypatch, gap):
    # an error that clears (rows copied) and comes back starts the wait over
    def service_at(t):
        if gap and 50 <= t < 51:
            return OLD, NEW, []
        return OLD, NEW, [ERROR] if t < 100 else []

    def stop_at_100(t):
        return (NEW, None, []) if t >= 100 else service_at(t)

    activation, _ = run(monkeypatch, stop_at_100, retry_wait="60")
    assert activation.state == ("active" if gap else "retrying")


def test_rules_replaced_by_another_deploy_still_fail(monkeypatch):
    activation, _ = run(monkeypatch, lambda t: (OLD, "other rules", []))
    assert activation.state == "failed" and "not r2" in activation.reason
