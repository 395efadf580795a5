import pytest

from powersync_plugin.core import decisions
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError, UsageProblem
from powersync_plugin.core.projector import project
from powersync_plugin.core.state import InstanceState


def stored(new_events, start=0, stream="ps1"):
    return [
        ev.StoredEvent(start + i + 1, stream, start + i + 1, e.type, e.schema, dict(e.payload), "2026-01-01T00:00:00Z", "tester", "cmd")
        for i, e in enumerate(new_events)
    ]


class Stream:
    """A journal in memory: decide, store, fold, as the application does."""

    def __init__(self, name="ps1"):
        self.name = name
        self.events = []

    @property
    def state(self) -> InstanceState:
        return project(self.name, self.events)

    def add(self, new_events):
        self.events += stored(new_events, len(self.events), self.name)
        return self.state


def created_stream():
    stream = Stream()
    stream.add(decisions.decide_create(stream.state, "ps1", "journeyapps/powersync-service", "1.25.0", "400m", "separate-database", "tok", None))
    stream.add([decisions.outcome(1, True)])
    return stream


def link_events(state, backend="jeeves"):
    return decisions.decide_link(state, backend, "db", "f1", "f2", (backend,), None, "http://x", "powersync_ps1", "disable", "disable")


def test_create_projects_a_live_instance():
    state = created_stream().state
    assert state.live and state.memory_mb == 400 and state.slot_prefix == "ps_ps1_"
    assert decisions.node_heap_megabytes(state.memory_mb) == 320


@pytest.mark.parametrize("name", ["Bad", "-x", "a_b", "a" * 41, "../etc", "x;rm", "ünï", ""])
def test_invalid_names_are_refused(name):
    with pytest.raises(UsageProblem):
        decisions.decide_create(InstanceState(name=name), name, "img", "1.25.0", "400m", "separate-database", "t", None)


@pytest.mark.parametrize("memory", ["abc", "400", "10m", "-1m"])
def test_invalid_memory_is_refused(memory):
    with pytest.raises(UsageProblem):
        decisions.memory_megabytes(memory)


def test_create_twice_is_refused():
    stream = created_stream()
    with pytest.raises(DomainError, match="already exists"):
        decisions.decide_create(stream.state, "ps1", "img", "1.25.0", "400m", "same-database", "t", None)


def test_identical_rules_are_a_no_op_and_new_rules_a_revision():
    stream = created_stream()
    stream.add(decisions.decide_set_rules(stream.state, "bucket_definitions: {a: {data: [SELECT 1]}}\n"))
    assert stream.state.current_rules.number == 1
    assert decisions.decide_set_rules(stream.state, "bucket_definitions: {a: {data: [SELECT 1]}}\n") == []
    stream.add(decisions.decide_set_rules(stream.state, "bucket_definitions: {a: {data: [SELECT 1]}, b: {data: [SELECT 2]}}\n"))
    assert stream.state.current_rules.number == 2
    assert stream.state.current_rules.description == "Set rules (+1, -0)"


def test_failed_rules_revert_to_the_previous_revision():
    stream = created_stream()
    stream.add(link_events(stream.state))
    stream.add([decisions.outcome(stream.state.version, True)])
    stream.add(decisions.decide_set_rules(stream.state, "streams: {a: {query: SELECT 1}}\n"))
    stream.add([decisions.outcome(stream.state.version, True)])
    stream.add(decisions.decide_set_rules(stream.state, "streams: {b: {query: SELECT 2}}\n"))
    failed_version = stream.state.version
    stream.add([decisions.outcome(failed_version, False, "exited after turning ready", restored=True)])
    state = stream.state
    assert state.current_rules.number == 1
    assert state.outcomes[failed_version].status == "failed"
    assert len(state.rules_history) == 2


def test_failed_link_leaves_the_instance_unlinked():
    stream = created_stream()
    stream.add(link_events(stream.state))
    stream.add([decisions.outcome(stream.state.version, False, "auth refused", restored=True)])
    assert stream.state.link is None


def test_second_backend_is_refused_naming_the_first():
    stream = created_stream()
    stream.add(link_events(stream.state))
    with pytest.raises(DomainError, match="already linked to jeeves"):
        link_events(stream.state, "other")


def test_destroy_refused_while_linked_then_allowed():
    stream = created_stream()
    stream.add(link_events(stream.state))
    with pytest.raises(DomainError, match="unlink"):
        decisions.decide_destroy(stream.state)
    stream.add(decisions.decide_unlink(stream.state, "jeeves", keep_slots=False))
    stream.add(decisions.decide_destroy(stream.state))
    assert stream.state.destroyed and not stream.state.live


def test_state_at_a_revision_is_the_fold_stopped_there():
    stream = created_stream()
    stream.add(decisions.decide_set_rules(stream.state, "streams: {a: {query: SELECT 1}}\n"))
    stream.add(decisions.decide_set_rules(stream.state, "streams: {b: {query: SELECT 2}}\n"))
    assert project("ps1", stream.events, until=3).current_rules.number == 1
    assert project("ps1", stream.events).current_rules.number == 2


def test_pending_intent_is_visible():
    stream = created_stream()
    stream.add(link_events(stream.state))
    assert stream.state.pending_intent == stream.state.version


def test_newer_schema_is_refused():
    events = created_stream().events
    newer = ev.StoredEvent(99, "ps1", 3, ev.RULES_SET, 7, {}, "", "", "")
    with pytest.raises(ValueError, match="newer dokku-powersync"):
        project("ps1", events + [newer])


def test_a_renamed_backend_keeps_the_link_and_a_renamed_instance_stream_is_no_longer_live():
    stream = created_stream()
    stream.add(link_events(stream.state))
    stream.add([decisions.outcome(3, True)])
    state = stream.add([ev.NewEvent(ev.BACKEND_RENAMED, {"from": "jeeves", "to": "butler"})])
    assert state.link.backend == "butler" and state.audience == ("jeeves",) and state.pending_intent is None
    state = stream.add([ev.NewEvent(ev.BACKEND_RENAMED, {"from": "other", "to": "x"})])
    assert state.link.backend == "butler"
    state = stream.add([ev.NewEvent(ev.INSTANCE_RENAMED, {"to": "ps2"})])
    assert not state.live and state.renamed_to == "ps2"
    with pytest.raises(DomainError, match="renamed to ps2"):
        decisions.require_live(state)
    recreated = stream.add(decisions.decide_create(state, "ps1", "img", "1.25.0", "400m", "separate-database", "t", None))
    assert recreated.live and recreated.renamed_to is None


def test_a_url_change_moves_the_link_url_only():
    stream = created_stream()
    stream.add(link_events(stream.state))
    state = stream.add([ev.NewEvent(ev.URL_CHANGED, {"url": "https://new.example", "cause": "apps:rename a b"})])
    assert state.link.url == "https://new.example" and state.link.backend == "jeeves" and state.pending_intent == 3


def test_telemetry_setting_is_a_no_op_at_its_value_and_a_failed_publish_restores_the_previous_one():
    stream = created_stream()
    assert decisions.decide_setting(stream.state, "telemetry", "on") == []  # the service's default
    with pytest.raises(UsageProblem):
        decisions.decide_setting(stream.state, "telemetry", "false")
    stream.add(decisions.decide_setting(stream.state, "telemetry", "off"))
    off_at = stream.state.version
    stream.add([decisions.outcome(off_at, True)])
    assert stream.state.telemetry is False
    assert decisions.decide_setting(stream.state, "telemetry", "off") == []
    stream.add(decisions.decide_setting(stream.state, "telemetry", "on"))
    assert stream.state.telemetry is True
    stream.add([decisions.outcome(stream.state.version, False, "not ready", restored=True)])
    assert stream.state.telemetry is False
