"""Issue 7: many commands at once serialise on the instance lock; the journal has no gap or duplicate."""
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import RULES, app_config, create_instance, journal_rows, linked_instance, unique
from tests.images.names import STANDIN_REPO

OK_FAILURES = ("is busy", "changed concurrently")


def run_many(h, commands, env=None):
    def one(args_and_input):
        args, stdin = args_and_input
        return subprocess.run(["dokku", *args], input=stdin, capture_output=True, text=True, env={**h.env, **(env or {})}, timeout=600)

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(one, commands))


def assert_contiguous(h):
    by_stream = {}
    for row in journal_rows(h):
        by_stream.setdefault(row[1], []).append(row[2])
    for stream, versions in by_stream.items():
        assert versions == list(range(1, len(versions) + 1)), (stream, versions)


def test_eight_set_rules_on_one_instance(harness):
    h = harness
    name = create_instance(h)
    rules = [RULES + f"  b{i}:\n    data:\n      - SELECT * FROM lists\n" for i in range(8)]
    results = run_many(h, [(["powersync:set-rules", name], text) for text in rules])
    for result in results:
        assert result.returncode == 0 or any(m in result.stderr for m in OK_FAILURES), result.stderr
    assert sum(result.returncode == 0 for result in results) >= 1
    assert any("Waiting for another powersync command" in r.stdout for r in results)  # announced while waiting
    assert_contiguous(h)
    history = json.loads(h.run("powersync:history", name, "--format", "json", "--rules").stdout)
    assert len(history) == sum(result.returncode == 0 for result in results)


def test_eight_creates_at_once(harness):
    h = harness
    names = [unique("cc") for _ in range(8)]
    results = run_many(h, [(["powersync:create", name, "--image", STANDIN_REPO], "") for name in names])
    assert [r.returncode for r in results] == [0] * 8, [r.stderr for r in results]
    listed = {row["name"] for row in json.loads(h.run("powersync:list", "--format", "json").stdout)}
    assert set(names) <= listed
    assert all(h.run("apps:exists", name).returncode == 0 for name in names)
    assert_contiguous(h)


def test_concurrent_publishes_end_in_the_state_the_journal_describes(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    rules = [RULES + f"  c{i}:\n    data:\n      - SELECT * FROM lists\n" for i in range(4)]
    results = run_many(h, [(["powersync:set-rules", name], text) for text in rules], env={"POWERSYNC_LOCK_TIMEOUT": "8"})
    for result in results:
        assert result.returncode == 0 or any(m in result.stderr for m in OK_FAILURES), result.stdout + result.stderr
    assert any("is busy" in r.stderr for r in results) or all(r.returncode == 0 for r in results)
    assert_contiguous(h)
    # The app runs exactly the config the journal describes: reconcile finds nothing to do.
    assert "matches its journal" in h.run("powersync:reconcile", name, "--dry-run").stdout
    assert h.run("powersync:info", name, "--pending-change").stdout.strip() == "-"
    assert app_config(h, name)["POWERSYNC_CONFIG_B64"]
