"""backup-journal and the pre-migration copy: SQLite's backup API copies one snapshot while a
writer appends, the copy passes integrity_check, refusals write nothing; `rules` reads light."""
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from powersync_plugin import journal_safety
from powersync_plugin.adapters.journal import Journal, create_or_upgrade
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.events import NewEvent

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("POWERSYNC_DATA_ROOT", str(tmp_path / "data"))
    create_or_upgrade(tmp_path / "data" / "journal.sqlite3")
    return tmp_path / "data"


def _versions_by_stream(path: Path) -> dict[str, list[int]]:
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        found: dict[str, list[int]] = {}
        for stream, version in connection.execute("SELECT stream, version FROM events ORDER BY stream, version"):
            found.setdefault(stream, []).append(version)
    return found


def test_a_backup_taken_while_a_writer_appends_is_a_consistent_prefix(data_root):
    appended, stop, failures = [0], threading.Event(), []

    def writer() -> None:
        # two events per transaction: a copy holding one without the other would be torn
        try:
            journal = Journal(data_root / "journal.sqlite3")  # sqlite3 connections stay in their thread
            while not stop.is_set():
                head = journal.head("s")
                journal.append("s", head, [NewEvent("setting.changed", {"key": "k", "value": str(head)})] * 2, "t", "t")
                appended[0] = head + 2
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    def wait_for(condition) -> None:
        deadline = time.monotonic() + 60
        while not condition():
            assert not failures and time.monotonic() < deadline, failures
            time.sleep(0.001)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_for(lambda: appended[0] >= 20)
        copies = [journal_safety.backup_journal(str(data_root / f"copy-{n}.sqlite3"), force=False) for n in range(5)]
        wait_for(lambda: appended[0] > max(copy.events for copy in copies))  # the writer outlived every copy
    finally:
        stop.set()
        thread.join()
    for copy in copies:
        versions = _versions_by_stream(copy.path)["s"]
        assert versions == list(range(1, len(versions) + 1)) and len(versions) % 2 == 0
        assert copy.events == len(versions) and copy.bytes == copy.path.stat().st_size
        assert stat.S_IMODE(copy.path.stat().st_mode) == 0o600
        assert not any(Path(f"{copy.path}{suffix}").exists() for suffix in ("-wal", "-shm"))
    assert 20 <= copies[0].events < Journal(data_root / "journal.sqlite3").head("s")


def test_default_path_is_under_the_data_root_and_timestamped(data_root):
    first = journal_safety.backup_journal(None, force=False)
    second = journal_safety.backup_journal(None, force=False)
    assert first.path.parent == second.path.parent == data_root / "backups"
    assert first.path.name.startswith("journal-") and first.path.name.endswith("Z.sqlite3")
    assert first.path != second.path
    assert stat.S_IMODE((data_root / "backups").stat().st_mode) == 0o700


def test_refusals_write_nothing(data_root, tmp_path):
    with pytest.raises(DomainError, match="does not exist: create it first"):
        journal_safety.backup_journal(str(tmp_path / "missing" / "j.sqlite3"), force=False)
    assert not (tmp_path / "missing").exists()
    existing = tmp_path / "there.sqlite3"
    existing.write_bytes(b"keep me")
    with pytest.raises(DomainError, match="already exists: .*--force"):
        journal_safety.backup_journal(str(existing), force=False)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(DomainError, match="is the live journal"):
        journal_safety.backup_journal(str(data_root / "journal.sqlite3"), force=True)
    with pytest.raises(DomainError, match="is a directory"):
        journal_safety.backup_journal(str(tmp_path), force=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data", "there.sqlite3"]


def test_force_replaces_and_drops_a_stale_wal(data_root, tmp_path):
    target = tmp_path / "copy.sqlite3"
    target.write_bytes(b"old")
    Path(f"{target}-wal").write_bytes(b"a stale WAL would be replayed into the new copy")
    result = journal_safety.backup_journal(str(target), force=True)
    assert result.path == target and not Path(f"{target}-wal").exists()
    assert _versions_by_stream(target) == {}


def test_the_copy_before_a_migration_only_when_the_schema_changes(data_root):
    journal = Journal(data_root / "journal.sqlite3")
    journal.append("a", 0, [NewEvent("setting.changed", {"key": "k", "value": "v"})], "t", "t")
    assert journal_safety.before_migration("0002") is None
    assert not (data_root / "backups").exists()
    with closing(sqlite3.connect(journal.path)) as connection, connection:
        connection.execute("UPDATE alembic_version SET version_num = '0001'")
    revision, copy = journal_safety.before_migration("0002")
    assert revision == "0001" and copy.path == data_root / "backups" / journal_safety.BEFORE_MIGRATION
    assert copy.events == 1


def test_no_copy_on_a_first_install(tmp_path, monkeypatch):
    monkeypatch.setenv("POWERSYNC_DATA_ROOT", str(tmp_path / "fresh"))
    assert journal_safety.before_migration("0002") is None


def test_rules_reads_without_sqlalchemy_or_the_docker_sdk(data_root):
    journal = Journal(data_root / "journal.sqlite3")
    journal.append("app", 0, [
        NewEvent("instance.created", {
            "image": "i", "image_version": "1.0.0", "memory_mb": 400, "storage": "separate-database",
            "api_token": "t", "slot_prefix": "p",
        }),
        NewEvent("rules.set", {"content": "streams: {}\r\n  ", "digest": "d", "description": "x"}),
    ], "t", "t")
    script = (
        "import sys\nfrom powersync_plugin.entry import main\ntry:\n    main(['powersync:rules', 'app'])\n"
        "finally:\n    sys.stderr.write(repr(sorted(m for m in ('sqlalchemy', 'docker', 'alembic') if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=ROOT,
                            env={**os.environ, "POWERSYNC_DATA_ROOT": str(data_root)})
    assert result.stdout == b"streams: {}\r\n  ", result.stderr
    assert result.stderr.endswith(b"[]")
