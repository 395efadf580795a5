"""Issue 7: kill -9 a mutating command at step boundaries; reconcile converges and nothing is orphaned."""
import os
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.e2e.conftest import RULES_2, linked_instance, slots, sync_stream_status
from tests.e2e.test_rules_api import current


def run_and_kill(h, args, input_text, marker, until_new_container=None, hold_journal_from=None):
    """Start a command, kill its whole process group with SIGKILL once `marker` appears in its output
    (and, with `until_new_container`, once Dokku's deploy has started that app's new container).
    With `hold_journal_from`, the test takes the journal's write lock once that line appears, so
    the command, which records nothing between the two lines, cannot record its outcome before
    the kill: a step that takes milliseconds is still killed in between."""
    process = subprocess.Popen(
        ["dokku", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=h.env, start_new_session=True, text=True,
    )
    process.stdin.write(input_text)
    process.stdin.close()
    seen, holder = [], None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        seen.append(line)
        if hold_journal_from and hold_journal_from in line and holder is None:
            holder = sqlite3.connect(journal_path(h), timeout=10, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
        if marker in line or time.monotonic() > deadline:
            break
    while until_new_container and not upcoming_containers(until_new_container) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if holder is not None:
        holder.execute("ROLLBACK")
        holder.close()
    assert any(marker in line for line in seen), "".join(seen)


def upcoming_containers(app):
    names = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=com.dokku.app-name={app}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    return [n for n in names if ".upcoming-" in n]


def journal_path(h) -> Path:
    return Path(h.root) / "var/lib/dokku/services/powersync/journal.sqlite3"


def integrity_ok(h):
    with closing(sqlite3.connect(journal_path(h))) as connection:
        return connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# Rules go through the service's deploy API (no restart): killed before or after the deploy.
# A restart is killed during an upgrade: before Dokku's deploy, during it, and after it.
@pytest.mark.parametrize(
    "command, marker, until_new_container",
    [
        ("set-rules", "Rules r2 recorded", False),
        ("set-rules", "through the service's API", False),
        ("upgrade", "Deploying", False),
        ("upgrade", "Deploying", True),
        ("upgrade", "with no restart (Dokku's startup checks)", False),
    ],
)
def test_change_killed_then_reconciled(harness, source, command, marker, until_new_container):
    h = harness
    name, backend = linked_instance(h, source)
    if command == "set-rules":
        hold = "Rules r2 recorded" if marker != "Rules r2 recorded" else None
        run_and_kill(h, ["powersync:set-rules", name], RULES_2, marker, until_new_container and name, hold)
    else:
        run_and_kill(h, ["powersync:upgrade", name, "--image-version", "1.26.0"], "", marker, until_new_container and name)
    assert integrity_ok(h)
    history = h.run("powersync:history", name).stdout
    assert "pending" in history
    result = h.run("powersync:reconcile", name)
    assert result.returncode == 0, result.stdout + result.stderr
    if until_new_container:
        assert "left by the interrupted deploy" in result.stdout, result.stdout
    assert h.run("powersync:info", name, "--pending-change").stdout.strip() == "-"
    assert "matches its journal" in h.run("powersync:reconcile", name).stdout
    assert sync_stream_status(name, backend.token(backend.app, None))[0] == 200
    if command == "set-rules":  # the journal is the truth: its r2 is what the service serves
        assert current(h, name)["current"]["content"] == RULES_2
    containers = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=com.dokku.app-name={name}", "--format", "{{.Names}} {{.State}}"],
        capture_output=True, text=True,
    ).stdout.split("\n")
    running = [line for line in containers if line.endswith("running")]
    assert running == [f"{name}.web.1 running"], containers
    # A deploy killed mid-way leaves its new container with a restart policy; reconcile removes it.
    assert not [line for line in containers if ".upcoming-" in line], containers


def test_unlink_killed_during_teardown_then_reconciled(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    prefix = h.run("powersync:info", name, "--slot-prefix").stdout.strip()
    run_and_kill(h, ["powersync:unlink", name, backend.app], "", "Tearing down")
    assert integrity_ok(h)
    assert "pending" in h.run("powersync:history", name).stdout
    result = h.run("powersync:reconcile", name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not any(slot.startswith(prefix) for slot in slots(h, source))
    assert h.run("powersync:destroy", name, "--force").returncode == 0
    assert h.run("apps:exists", name).returncode == 20
    databases = h.run("postgres:connect", source, input="SELECT datname FROM pg_database;\n").stdout
    assert "powersync_" + name.replace("-", "_") not in databases
