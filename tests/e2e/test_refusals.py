"""Every refusal names the problem and the fix, exits non-zero, and changes nothing."""
import pytest

from tests.e2e.conftest import RULES, create_instance, make_backend, make_source, snapshot, unique
from tests.images.names import STANDIN_REPO

INVALID_FOR_THE_SERVICE = """bucket_definitions:
  joined:
    data:
      - SELECT * FROM todos JOIN lists ON todos.id = lists.id
"""


def refused(h, args, apps, input=None, code=1):
    before = snapshot(h, *apps)
    result = h.run(*args, input=input)
    assert result.returncode == code, result.stdout + result.stderr
    assert snapshot(h, *apps) == before
    assert result.stderr.startswith(" !     "), result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def linked(harness, source):
    backend = make_backend(harness, source)
    name = create_instance(harness)
    assert harness.run("powersync:set-rules", name, input=RULES).returncode == 0
    result = harness.run("powersync:link", name, backend.app)
    assert result.returncode == 0, result.stdout + result.stderr
    return name, backend


@pytest.mark.parametrize("bad", ["Bad-Name", "../etc", "a;rm -rf /", "ünïcode", "x" * 200, "dash-"[::-1]])
def test_create_refuses_invalid_names(harness, bad):
    err = refused(harness, ["powersync:create", "--image", STANDIN_REPO, "--", bad], [])
    assert "Invalid instance name" in err


def test_create_refuses_an_existing_app(harness):
    app = unique("taken")
    assert harness.run("apps:create", app).returncode == 0
    err = refused(harness, ["powersync:create", app, "--image", STANDIN_REPO], [app])
    assert f"App {app} already exists" in err and "powersync:adopt" in err


def test_create_refuses_unknown_flags_with_exit_2(harness):
    err = refused(harness, ["powersync:create", unique("ps"), "--image", STANDIN_REPO, "--colour", "red"], [], code=2)
    assert "No such option '--colour'" in err


@pytest.mark.parametrize(
    "rules, message",
    [
        ("", "No rules on stdin"),
        ("bucket_definitions:\n  a: {}\n\tb: 1\n", "line 3"),
        ("hello: world\n", "neither `bucket_definitions` nor `streams`"),
        ("bucket_definitions: !!python/object:os.system {}\n", "custom YAML tag"),
    ],
)
def test_set_rules_refuses_bad_rules(harness, linked, rules, message):
    name, backend = linked
    err = refused(harness, ["powersync:set-rules", name], [name, backend.app], input=rules)
    assert message in err


def test_set_rules_refuses_what_the_running_instance_rejects(harness, linked):
    name, backend = linked
    deploys = len(harness.deploys(name))
    err = refused(harness, ["powersync:set-rules", name], [name, backend.app], input=INVALID_FOR_THE_SERVICE)
    assert "The instance rejected these rules" in err and "single table" in err
    assert len(harness.deploys(name)) == deploys


def test_link_refuses_a_second_backend_naming_the_first(harness, linked):
    name, backend = linked
    other = make_backend(harness, None)
    err = refused(harness, ["powersync:link", name, other.app], [name, backend.app, other.app])
    assert f"already linked to {backend.app}" in err


def test_link_refuses_a_backend_another_instance_serves(harness, linked):
    name, backend = linked
    second = create_instance(harness)
    err = refused(harness, ["powersync:link", second, backend.app], [name, second, backend.app])
    assert f"{backend.app} is already linked to PowerSync instance {name}" in err
    assert harness.run("powersync:destroy", second, "--force").returncode == 0


def test_destroy_refuses_while_linked(harness, linked):
    name, backend = linked
    err = refused(harness, ["powersync:destroy", name, "--force"], [name, backend.app])
    assert f"powersync:unlink {name} {backend.app}" in err


def test_link_refuses_a_backend_without_secret_key(harness, source):
    name = create_instance(harness)
    backend = make_backend(harness, source, secret_key=None)
    err = refused(harness, ["powersync:link", name, backend.app], [name, backend.app])
    assert "has no SECRET_KEY" in err


def test_link_refuses_a_non_postgres_database(harness):
    name = create_instance(harness)
    backend = make_backend(harness, None)
    assert harness.run("config:set", "--no-restart", backend.app, "DATABASE_URL=mysql://u:pw@db/x").returncode == 0
    err = refused(harness, ["powersync:link", name, backend.app], [name, backend.app])
    assert "not Postgres" in err and "pw" not in err


def test_link_refuses_a_source_without_logical_wal_level_with_the_fix(harness):
    service = make_source(harness, wal_level="replica")
    name = create_instance(harness)
    backend = make_backend(harness, service)
    err = refused(harness, ["powersync:link", name, backend.app], [name, backend.app])
    assert "wal_level=replica" in err and "ALTER SYSTEM SET wal_level = logical" in err


def test_link_refuses_a_source_without_publication_with_the_fix(harness):
    service = make_source(harness, publication=False)
    name = create_instance(harness)
    backend = make_backend(harness, service)
    err = refused(harness, ["powersync:link", name, backend.app], [name, backend.app])
    assert "no publication named powersync" in err and "CREATE PUBLICATION powersync" in err


def test_link_refuses_an_instance_without_domain(harness, source):
    name = unique("ps")
    assert harness.run("powersync:create", name, "--image", STANDIN_REPO).returncode == 0
    backend = make_backend(harness, source)
    err = refused(harness, ["powersync:link", name, backend.app], [name, backend.app])
    assert f"dokku domains:set {name}" in err


def test_destroy_without_force_needs_the_typed_name(harness):
    name = create_instance(harness)
    err = refused(harness, ["powersync:destroy", name], [name], input="wrong\n")
    assert "Confirmation did not match" in err
    assert harness.run("powersync:destroy", name, input=f"{name}\n").returncode == 0

