"""`powersync:rules` prints a revision byte for byte (round trip with set-rules is a no-op), and
`powersync:backup-journal` copies the journal consistently while another process appends."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

from tests.e2e.conftest import RULES, create_instance, history
from tests.harness.paths import BIN_DIR

# No trailing newline, trailing spaces, CRLF line ends: what a text-mode print would change.
AWKWARD = RULES.rstrip("\n").replace("\n", "  \r\n").encode()


def run_bytes(h, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """h.run decodes text with universal newlines; the bytes matter here."""
    return subprocess.run([str(BIN_DIR / "dokku"), *args], input=stdin, capture_output=True, env=h.env, timeout=600)


def test_rules_prints_each_revision_byte_for_byte_and_round_trips(harness):
    name = create_instance(harness)
    result = harness.run("powersync:rules", name)
    assert result.returncode == 1 and f"{name} has no rules yet" in result.stderr and not result.stdout
    first = run_bytes(harness, "powersync:set-rules", name, stdin=RULES.encode())
    assert first.returncode == 0, first.stderr
    second = run_bytes(harness, "powersync:set-rules", name, stdin=AWKWARD)
    assert second.returncode == 0, second.stderr
    assert run_bytes(harness, "powersync:rules", name).stdout == AWKWARD
    assert run_bytes(harness, "powersync:rules", name, "--rev", "r1").stdout == RULES.encode()
    assert run_bytes(harness, "powersync:rules", name, "--rev", "r2").stdout == AWKWARD

    before = history(harness, name, "--all")
    out = run_bytes(harness, "powersync:rules", name).stdout
    again = run_bytes(harness, "powersync:set-rules", name, stdin=out)
    assert again.returncode == 0 and b"Rules unchanged" in again.stdout, again.stderr
    assert history(harness, name, "--all") == before

    missing = harness.run("powersync:rules", name, "--rev", "r9")
    assert missing.returncode == 1 and f"{name} has no rules revision r9 (it has r1..r2)" in missing.stderr
    unknown = harness.run("powersync:rules", "no-such-instance")
    assert unknown.returncode == 1 and " !     " in unknown.stderr and "does not exist" in unknown.stderr


APPENDER = """
import sys, time
from pathlib import Path
from powersync_plugin.adapters.journal import Journal
from powersync_plugin.core.events import NewEvent
journal, stream, stop = Journal(Path(sys.argv[1])), sys.argv[2], Path(sys.argv[3])
while not stop.exists():
    head = journal.head(stream)
    # two events per transaction: a torn copy would hold an odd number
    journal.append(stream, head, [NewEvent("setting.changed", {"key": "auto-rotate", "value": v}) for v in ("true", "false")],
                   "appender", "test")
"""


def _stream_versions(path: Path, stream: str) -> list[int]:
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return [row[0] for row in connection.execute("SELECT version FROM events WHERE stream = ? ORDER BY version", (stream,))]


def test_backup_while_another_process_appends(harness, tmp_path):
    name = create_instance(harness)
    lib = Path(harness.root) / "var/lib/dokku"
    journal = lib / "services/powersync/journal.sqlite3"
    stop = Path(harness.root) / f"stop-{name}"
    appender = subprocess.Popen(
        ["setpriv", "--reuid=dokku", "--regid=dokku", "--init-groups", str(lib / "data/powersync/venv/bin/python"),
         "-c", f"import os; os.umask(0o077)\n{APPENDER}", str(journal), name, str(stop)],
        env={"PYTHONPATH": str(lib / "plugins/available/powersync")}, stderr=subprocess.PIPE,
    )
    try:
        created = len(_stream_versions(journal, name))
        deadline = time.monotonic() + 60
        while len(_stream_versions(journal, name)) < created + 20:
            assert appender.poll() is None and time.monotonic() < deadline, appender.stderr.read()
            time.sleep(0.05)
        copies = []
        for _ in range(3):
            result = harness.run("powersync:backup-journal", "--format", "json")
            assert result.returncode == 0, result.stderr
            copies.append(json.loads(result.stdout))
        while len(_stream_versions(journal, name)) <= max(c["events"] for c in copies):
            assert appender.poll() is None, appender.stderr.read()
            time.sleep(0.05)
        assert appender.poll() is None  # it was still writing after the last copy
    finally:
        stop.touch()
        appender.wait(timeout=60)
    for copy in copies:
        path = Path(copy["path"])
        assert path.parent == lib / "services/powersync/backups" and path.stat().st_size == copy["bytes"]
        assert path.stat().st_mode & 0o777 == 0o600 and path.owner() == "dokku"
        versions = _stream_versions(path, name)
        assert versions == list(range(1, len(versions) + 1)) and (len(versions) - created) % 2 == 0
        assert len(versions) > created + 20
    text = harness.run("powersync:backup-journal")
    assert text.returncode == 0 and text.stdout.startswith("-----> Journal copied to ") and "events: " in text.stdout


def test_backup_refusals_write_nothing(harness):
    lib = Path(harness.root) / "var/lib/dokku"
    missing = harness.run("powersync:backup-journal", str(lib / "no-such-dir/j.sqlite3"))
    assert missing.returncode == 1 and "does not exist: create it first" in missing.stderr
    first = harness.run("powersync:backup-journal", "--format", "json")
    path = json.loads(first.stdout)["path"]
    before = Path(path).read_bytes()
    again = harness.run("powersync:backup-journal", path)
    assert again.returncode == 1 and "already exists" in again.stderr and Path(path).read_bytes() == before
    live = harness.run("powersync:backup-journal", "--force", str(lib / "services/powersync/journal.sqlite3"))
    assert live.returncode == 1 and "is the live journal" in live.stderr
