import os
import sqlite3
import stat
from pathlib import Path

import pytest

from powersync_plugin.adapters.journal import SCHEMA_REVISION, Journal, JournalError, create_or_upgrade
from powersync_plugin.core.errors import ConcurrencyError
from powersync_plugin.core.events import NewEvent


@pytest.fixture
def journal(tmp_path) -> Journal:
    path = tmp_path / "journal.sqlite3"
    create_or_upgrade(path)
    return Journal(path)


def test_schema_revision_matches_the_alembic_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parents[2] / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def test_journal_is_0600_and_in_wal_mode(journal):
    assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600
    assert sqlite3.connect(journal.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_append_is_versioned_and_stale_appends_are_refused(journal):
    event = NewEvent("instance.created", {"x": 1})
    first = journal.append("a", 0, [event, NewEvent("deploy.succeeded", {"cause": 1})], "alice", "dokku powersync:create a")
    assert [e.version for e in first] == [1, 2]
    assert first[0].actor == "alice" and first[0].schema == 1
    with pytest.raises(ConcurrencyError, match="changed concurrently"):
        journal.append("a", 1, [event], "bob", "cmd")
    assert [e.version for e in journal.load("a")] == [1, 2]
    journal.append("b", 0, [event], "bob", "cmd")
    assert journal.streams() == ["a", "b"]


def test_newer_schema_is_refused(journal):
    with sqlite3.connect(journal.path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(JournalError, match="newer than this plugin"):
        Journal(journal.path)


def test_corrupted_journal_is_a_clear_error(tmp_path):
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="cannot be read"):
        Journal(path)


def test_missing_journal_says_how_to_create_it(tmp_path):
    with pytest.raises(JournalError, match="plugin:install"):
        Journal(tmp_path / "nope.sqlite3")


def test_summaries_are_fresh_only_at_the_stream_head_and_never_go_back(journal):
    event = NewEvent("instance.created", {"x": 1})
    journal.append("a", 0, [event, NewEvent("deploy.succeeded", {"cause": 1})], "alice", "cmd")
    journal.save_summary("a", 2, '{"v": 2}')
    journal.save_summary("a", 1, '{"v": 1}')  # an older writer finishing late
    assert journal.summaries("a") == {"a": (2, 2, '{"v": 2}')}
    journal.append("a", 2, [NewEvent("setting.changed", {"key": "auto-rotate", "value": "false"})], "bob", "cmd")
    version, head, _ = journal.summaries("a")["a"]
    assert (version, head) == (2, 3)  # stale: readers refold


def test_a_renamed_stream_continues_under_the_new_name_and_the_old_one_ends(journal):
    journal.append("old", 0, [NewEvent("instance.created", {"x": 1}), NewEvent("deploy.succeeded", {"cause": 1})], "alice", "create")
    journal.continue_stream(
        "old", 2, "new", NewEvent("instance.renamed", {"to": "new"}), NewEvent("instance.renamed_from", {"from": "old"}),
        "bob", "dokku apps:rename old new",
    )
    old, new = journal.load("old"), journal.load("new")
    assert [(e.version, e.type) for e in old] == [(1, "instance.created"), (2, "deploy.succeeded"), (3, "instance.renamed")]
    assert [(e.version, e.type, e.actor) for e in new] == [
        (1, "instance.created", "alice"), (2, "deploy.succeeded", "alice"), (3, "instance.renamed_from", "bob"),
    ]
    assert [e.recorded_at for e in new[:2]] == [e.recorded_at for e in old[:2]]
    assert new[0].payload == old[0].payload


def test_a_rename_onto_a_name_with_history_or_a_moved_stream_is_refused_whole(journal):
    journal.append("old", 0, [NewEvent("instance.created", {"x": 1})], "alice", "create")
    journal.append("taken", 0, [NewEvent("instance.created", {"x": 2})], "alice", "create")
    renamed = NewEvent("instance.renamed", {"to": "taken"})
    renamed_from = NewEvent("instance.renamed_from", {"from": "old"})
    with pytest.raises(JournalError, match="already holds the history"):
        journal.continue_stream("old", 1, "taken", renamed, renamed_from, "bob", "cmd")
    with pytest.raises(ConcurrencyError):
        journal.continue_stream("old", 0, "fresh", renamed, renamed_from, "bob", "cmd")
    assert [e.version for e in journal.load("old")] == [1] and journal.load("fresh") == []
    assert [e.version for e in journal.load("taken")] == [1]


def test_an_imported_stream_keeps_the_exported_rows_then_records_the_import(journal):
    rows = [
        {"version": 1, "type": "instance.created", "schema": 1, "payload": {"x": 1}, "recorded_at": "2025-01-01T00:00:00Z",
         "actor": "alice", "command": "dokku powersync:create ps"},
        {"version": 2, "type": "deploy.succeeded", "schema": 1, "payload": {"cause": 1}, "recorded_at": "2025-01-02T00:00:00Z",
         "actor": "bob", "command": "dokku powersync:create ps"},
    ]
    journal.import_stream("ps", rows, NewEvent("instance.imported", {"from_host": "old"}), "carol", "dokku powersync:import")
    loaded = journal.load("ps")
    assert [(e.version, e.type, dict(e.payload), e.recorded_at, e.actor, e.command) for e in loaded[:2]] == [
        (r["version"], r["type"], r["payload"], r["recorded_at"], r["actor"], r["command"]) for r in rows
    ]
    assert (loaded[2].version, loaded[2].type, loaded[2].actor) == (3, "instance.imported", "carol")


def test_an_import_onto_a_name_with_history_writes_nothing(journal):
    journal.append("ps", 0, [NewEvent("instance.created", {"x": 2})], "alice", "create")
    row = {"version": 1, "type": "instance.created", "schema": 1, "payload": {"x": 1}, "recorded_at": "t", "actor": "a", "command": "c"}
    with pytest.raises(JournalError, match="already holds the history of another instance named ps"):
        journal.import_stream("ps", [row], NewEvent("instance.imported", {}), "carol", "import")
    assert [dict(e.payload) for e in journal.load("ps")] == [{"x": 2}]
