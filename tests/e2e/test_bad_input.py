"""Issue 7's bad-input corpus: each case names the problem and changes nothing."""
import os
import sqlite3
import subprocess
import time
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import RULES, app_config, create_instance, make_backend, snapshot, unique
from tests.images.names import STANDIN_REPO

MB = 1024 * 1024


def journal_path(h) -> Path:
    return Path(h.root) / "var/lib/dokku/services/powersync/journal.sqlite3"


@contextmanager
def damaged_journal(h):
    """Yield the journal path; whatever the test does to it is undone afterwards."""
    path = journal_path(h)
    with closing(sqlite3.connect(path)) as connection:  # everything into the main file first
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data, stat = path.read_bytes(), os.stat(path)
    try:
        yield path
    finally:
        for extra in path.parent.glob("journal.sqlite3-*"):
            extra.unlink()
        path.write_bytes(data)
        os.chmod(path, stat.st_mode & 0o777)
        os.chown(path, stat.st_uid, stat.st_gid)


@pytest.mark.parametrize(
    "rules, message",
    [
        (b"", "No rules on stdin"),
        (b"\x00\x01\x02binary\xff", "NUL"),
        (b"bucket_definitions:\n  a: \xe9\n", "not UTF-8"),
        (b"bucket_definitions:\n" + b"#" * (10 * MB), "over the 512 KiB limit"),
        (b"a0: &a0 [x, x]\n" + b"".join(b"a%d: &a%d [*a%d, *a%d, *a%d]\n" % (i, i, i - 1, i - 1, i - 1) for i in range(1, 60)) + b"bucket_definitions: *a59\n", "YAML bomb"),
        (b"bucket_definitions: !custom {}\n", "custom YAML tag"),
        (b"- just\n- a list\n", "top level must be a mapping"),
    ],
)
def test_bad_rules_are_refused_without_change(harness, rules, message):
    h = harness
    name = create_instance(h)
    before = snapshot(h, name)
    result = subprocess.run(["dokku", "powersync:set-rules", name], input=rules, capture_output=True, env=h.env)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr.decode(), result.stderr
    assert snapshot(h, name) == before


def test_unreachable_source_is_rolled_back(harness):
    """A DSN whose host does not resolve: the deploy fails, the link is undone and recorded."""
    h = harness
    name = create_instance(h, "--storage", "same-database")
    backend = make_backend(h, None)
    assert h.run("config:set", "--no-restart", backend.app, "DATABASE_URL=postgres://u:pw123456@no-such-host.invalid:5432/db").returncode == 0
    result = h.run("powersync:link", name, backend.app, env={"POWERSYNC_READY_TIMEOUT": "20"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Restored" in result.stderr and "pw123456" not in result.stdout + result.stderr
    env = app_config(h, name)
    assert not any(key in env for key in ("PS_SECRET_KEY_B64", "PS_DATA_SOURCE_URI"))
    assert "POWERSYNC_URL" not in app_config(h, backend.app)
    assert h.run("powersync:links", name).stdout.strip() == ""
    assert "failed" in h.run("powersync:history", name).stdout


def test_corrupted_journal(harness):
    h = harness
    name = create_instance(h)
    with damaged_journal(h) as path:
        path.write_bytes(b"garbage" * 1000)
        for extra in path.parent.glob("journal.sqlite3-*"):
            extra.unlink()
        result = h.run("powersync:info", name)
        assert result.returncode == 1 and "may be corrupted" in result.stderr


def test_journal_from_a_newer_plugin(harness):
    h = harness
    name = create_instance(h)
    with damaged_journal(h) as path:
        with closing(sqlite3.connect(path)) as connection:
            connection.execute("UPDATE alembic_version SET version_num = '9999'")
            connection.commit()
        result = h.run("powersync:set-rules", name, input=RULES)
        assert result.returncode == 1 and "newer than this plugin" in result.stderr


def test_read_only_journal_records_nothing_and_does_nothing(harness):
    h = harness
    name = unique("ro")
    with damaged_journal(h) as path:
        os.chmod(path, 0o400)
        result = h.run("powersync:create", name, "--image", STANDIN_REPO)
        assert result.returncode == 1 and "could not be written" in result.stderr
    assert h.run("apps:exists", name).returncode == 20


def test_locked_journal_fails_clearly(harness):
    h = harness
    name = create_instance(h)
    path = journal_path(h)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        result = h.run("powersync:set-rules", name, input=RULES)
        assert result.returncode == 1 and "locked" in result.stderr
        assert time.monotonic() - started < 60
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
