"""A window of the newest history rows equals the tail of the full history, whatever the cut."""
import pytest

from powersync_plugin import read_side as reads
from powersync_plugin.adapters.journal import Journal, create_or_upgrade
from powersync_plugin.core import decisions
from tests.unit.test_projector_and_decisions import created_stream, link_events


@pytest.fixture
def journal_with_history(tmp_path, monkeypatch):
    monkeypatch.setenv("POWERSYNC_DATA_ROOT", str(tmp_path))
    create_or_upgrade(tmp_path / "journal.sqlite3")
    stream = created_stream()
    stream.add(decisions.decide_set_rules(stream.state, "streams: {a: {query: SELECT 1}}\n"))
    stream.add(link_events(stream.state))
    stream.add([decisions.outcome(stream.state.version, False, "auth refused", restored=True)])
    stream.add(link_events(stream.state))
    stream.add([decisions.outcome(stream.state.version, True)])
    for index in range(5):
        stream.add(decisions.decide_set_rules(stream.state, f"streams: {{b{index}: {{query: SELECT 2}}}}\n"))
        stream.add([decisions.outcome(stream.state.version, index != 2, "boom")])
    stream.add(decisions.decide_unlink(stream.state, "jeeves", keep_slots=False))
    stream.add([decisions.outcome(stream.state.version, True)])
    stream.add(decisions.decide_set_rules(stream.state, "streams: {c: {query: SELECT 3}}\n"))
    journal = Journal(tmp_path / "journal.sqlite3")
    for event in stream.events:
        journal.append("ps1", event.version - 1, [_new(event)], event.actor, event.command)
    return journal


def _new(event):
    from powersync_plugin.core.events import NewEvent

    return NewEvent(event.type, event.payload, event.schema)


@pytest.mark.parametrize("rules_only", [False, True])
def test_every_window_is_the_tail_of_the_full_history(journal_with_history, rules_only):
    full = reads.history("ps1", rules_only, None)
    statuses = {row.status for row in full}
    assert {"applied", "failed", "stored"} <= statuses or rules_only
    for limit in range(1, len(full) + 2):
        assert reads.history("ps1", rules_only, limit) == full[-limit:], limit
