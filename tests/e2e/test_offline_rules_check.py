"""Rules are checked whether or not the instance runs (real-host finding 7).

On a real host, `set-rules` on an unlinked instance recorded a JOIN in a data query; the next
`link` deployed it, the service turned ready and exited (`Must SELECT from a single table`).
When no instance runs, the instance image's own parser (@powersync/service-sync-rules, in a
one-off container) gives the verdict before anything is recorded. (This replaces the old
test_refusals case where a stopped instance deployed such rules and the crash was undone.)
"""
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import ROOT, RULES, history, linked_instance, make_backend
from tests.e2e.test_refusals import refused

JOIN = """bucket_definitions:
  joined:
    data:
      - SELECT * FROM todos JOIN x ON x.id = todos.id
"""


def rules_revision(h, name: str) -> str:
    result = h.run("powersync:info", name, "--rules-revision")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def no_check_containers_left(name: str) -> bool:
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.dokku.powersync.rules-check={name}"],
        capture_output=True, text=True, check=True,
    )
    return listed.stdout.strip() == ""


def record_unchecked_rules(h, name: str, content: str) -> None:
    """A rules revision as a plugin version without the offline check recorded it (the real
    host's state), appended through the plugin's own journal code as the dokku user."""
    journal = Path(h.root) / "var/lib/dokku/services/powersync/journal.sqlite3"
    script = (
        "import sys\n"
        "from powersync_plugin.adapters.journal import Journal\n"
        "from powersync_plugin.core import decisions\n"
        "from powersync_plugin.core.projector import project\n"
        "journal, name = Journal(__import__('pathlib').Path(sys.argv[1])), sys.argv[2]\n"
        "state = project(name, journal.load(name))\n"
        "journal.append(name, state.version, decisions.decide_set_rules(state, sys.stdin.read()), 'test', 'seed')\n"
    )
    subprocess.run(
        ["setpriv", "--reuid=dokku", "--regid=dokku", "--init-groups", sys.executable, "-c", script, str(journal), name],
        input=content, text=True, check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)},
    )


def test_unlinked_instance_refuses_rules_the_image_parser_rejects(harness, instance):
    events = len(history(harness, instance))
    err = refused(harness, ["powersync:set-rules", instance], [instance], input=JOIN)
    assert "rejected these rules" in err and "Must SELECT from a single table" in err, err
    assert rules_revision(harness, instance) == "-"
    # a dry run starts no container (tests/e2e/test_dry_runs.py): it says the check is left out
    result = harness.run("powersync:set-rules", "--dry-run", instance, input=JOIN)
    assert result.returncode == 0 and "a dry run starts no container" in result.stdout, result.stdout + result.stderr
    assert len(history(harness, instance)) == events
    # good rules still record while unlinked, and a later bad set leaves them current
    result = harness.run("powersync:set-rules", instance, input=RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert rules_revision(harness, instance) == "r1"
    err = refused(harness, ["powersync:set-rules", instance], [instance], input=JOIN)
    assert "Must SELECT from a single table" in err
    assert rules_revision(harness, instance) == "r1"
    assert len(history(harness, instance, "--rules")) == 1
    assert no_check_containers_left(instance)


def test_stopped_instance_refuses_bad_rules_before_any_deploy(harness, source):
    name, backend = linked_instance(harness, source)
    assert harness.run("ps:stop", name).returncode == 0
    deploys = len(harness.deploys(name))
    err = refused(harness, ["powersync:set-rules", name], [name, backend.app], input=JOIN)
    assert "Must SELECT from a single table" in err and "Restored" not in err, err
    assert len(harness.deploys(name)) == deploys
    assert rules_revision(harness, name) == "r1"
    assert no_check_containers_left(name)


def test_link_refuses_to_deploy_a_stored_revision_the_parser_rejects(harness, source, instance):
    assert harness.run("powersync:set-rules", instance, input=RULES).returncode == 0
    record_unchecked_rules(harness, instance, JOIN)
    assert rules_revision(harness, instance) == "r2"
    backend = make_backend(harness, source)
    err = refused(harness, ["powersync:link", instance, backend.app], [instance, backend.app])
    assert "rejects the current rules r2" in err and "Must SELECT from a single table" in err, err
    assert harness.deploys(instance) == []
    # rolling back to r1 (checked, valid) makes it linkable
    result = harness.run("powersync:rollback-rules", instance, "--to", "r1", "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    result = harness.run("powersync:link", instance, backend.app)
    assert result.returncode == 0, result.stdout + result.stderr
