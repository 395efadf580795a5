"""What the journal says the service does with the current rules revision (info's rules-state)."""
from powersync_plugin.core import decisions
from powersync_plugin.core import events as ev
from powersync_plugin.read_model import history_rows, rules_state_text
from tests.unit.test_projector_and_decisions import created_stream, link_events

RULES = "bucket_definitions:\n  a:\n    data:\n      - SELECT * FROM todos\n"


def linked_with_rules():
    stream = created_stream()
    stream.add(decisions.decide_set_rules(stream.state, RULES))
    state = stream.add(link_events(stream.state))
    stream.add([decisions.outcome(state.version, True)])
    return stream


def activated(number, digest="d", seconds=1.5):
    return ev.NewEvent(ev.RULES_ACTIVATED, {"revision": number, "digest": digest, "slot": "ps_1_abcd", "seconds": seconds})


def test_stored_rules_are_not_deployed_until_link():
    stream = created_stream()
    state = stream.add(decisions.decide_set_rules(stream.state, RULES))
    assert (state.rules_activation, rules_state_text(state)) == ("stored", "stored")


def test_a_deployed_revision_is_deploying_until_its_activation_is_observed():
    stream = linked_with_rules()
    stream.add([activated(1)])
    state = stream.add(decisions.decide_set_rules(stream.state, RULES + "# changed\n"))
    stream.add([decisions.outcome(state.version, True)])
    assert rules_state_text(stream.state) == "deploying (r1 serving)"
    assert rules_state_text(stream.add([activated(2)])) == "active"


def test_a_failed_activation_names_the_reason_and_a_new_revision_clears_it():
    stream = linked_with_rules()
    state = stream.add([ev.NewEvent(ev.RULES_ACTIVATION_FAILED, {"revision": 1, "digest": "d", "reason": "relation \"todos\" does not exist"})])
    assert rules_state_text(state) == 'failed: relation "todos" does not exist'
    state = stream.add(decisions.decide_set_rules(state, RULES + "# fixed\n"))
    assert state.rules_failure == "" and state.rules_activation == ""  # recorded, no outcome yet


def test_a_refused_deploy_leaves_the_previous_revision_current():
    stream = linked_with_rules()
    stream.add([activated(1)])
    state = stream.add(decisions.decide_set_rules(stream.state, RULES + "# bad\n"))
    state = stream.add([decisions.outcome(state.version, False, "PSYNC_R0001: Must SELECT from a single table")])
    assert state.current_rules.number == 1 and rules_state_text(state) == "active"


def test_history_describes_activation_and_its_failure():
    stream = linked_with_rules()
    stream.add([activated(1, seconds=5.1)])
    stream.add([ev.NewEvent(ev.RULES_ACTIVATION_FAILED, {"revision": 1, "digest": "d", "reason": "boom"})])
    rows = history_rows("ps1", stream.events)
    assert [(row.event, row.status) for row in rows[-2:]] == [("rules.activated", "observed"), ("rules.activation_failed", "observed")]
    assert rows[-2].description == "Rules r1 active on the service after 5.1s (slot ps_1_abcd)"
    assert rows[-1].description == "Rules r1 did not become active: boom"


def test_history_text_keeps_its_columns_apart_for_the_longest_event():
    from powersync_plugin.text_views import history_lines

    stream = linked_with_rules()
    stream.add([ev.NewEvent(ev.RULES_ACTIVATION_FAILED, {"revision": 1, "digest": "d", "reason": "boom"})])
    lines = history_lines("ps1", history_rows("ps1", stream.events))
    failed = next(line for line in lines if "rules.activation_failed" in line)
    assert "rules.activation_failed observed" in failed
    assert lines[1].index("STATUS") == failed.index("observed")
