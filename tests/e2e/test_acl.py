"""Issue 11, access: the plugin obeys Dokku's ACL model (dokku-acl's user-auth, modelled in
tests/harness/dokku_acl) for the apps a command reaches beyond the one Dokku checked.

Host setup as dokku-acl's README recommends, with the plugin's per-instance commands checked per
app: `powersync:link ps api` passes Dokku's own check for whoever is allowed on `ps`, yet copies
api's SECRET_KEY into ps's config, which everyone allowed on ps can read.
"""
import pytest

from tests.e2e.conftest import RULES, create_instance, make_backend, make_source, snapshot
from tests.harness.fixture import make_harness

PER_APP = "powersync:link powersync:unlink powersync:token powersync:info powersync:set powersync:history"
ACL = {
    "DOKKU_SUPER_USER": "admin",
    "DOKKU_ACL_ALLOW_COMMAND_LINE": "1",
    # import names no instance on its command line: everyone may run it (to show --link is checked)
    "DOKKU_ACL_USER_COMMANDS": "help version powersync:help powersync:import",
    "DOKKU_ACL_PER_APP_COMMANDS": PER_APP,
}


@pytest.fixture(scope="module")
def h(images):
    """A harness of its own: dokku-acl's user-auth runs before every command once installed."""
    harness = make_harness()
    result = harness.install_plugin()
    assert result.returncode == 0, result.stdout + result.stderr
    result = harness.install_acl_model(**ACL)
    assert result.returncode == 0, result.stdout + result.stderr
    yield harness
    harness.cleanup()


@pytest.fixture(scope="module")
def source(h):
    return make_source(h)


def allow(h, app: str, *users: str) -> None:
    for user in users:
        result = h.run("acl:add", app, user)
        assert result.returncode == 0, result.stderr


def instance_and_backend(h, source):
    """`ps` with rules, allowed to bob and carol; `api` with a SECRET_KEY, allowed to carol only."""
    backend = make_backend(h, source)
    name = create_instance(h)
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    allow(h, name, "bob", "carol")
    allow(h, backend.app, "carol")
    return name, backend


def refused_over_ssh(h, user, args, apps):
    before = snapshot(h, *apps)
    result = h.run_over_ssh(user, *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert snapshot(h, *apps) == before
    assert result.stderr.startswith(" !     "), result.stderr
    return result


def test_a_user_not_allowed_on_the_backend_cannot_link_to_it(h, source):
    name, backend = instance_and_backend(h, source)
    for flags in ((), ("--dry-run",)):
        result = refused_over_ssh(h, "bob", ["powersync:link", name, backend.app, *flags], [name, backend.app])
        assert f"Access to {backend.app} denied for bob" in result.stderr, result.stderr
        assert f"copies {backend.app}'s SECRET_KEY into {name}" in result.stderr
        # Dokku's own words, which tell nothing about whether the app exists
        assert f"User bob does not have permissions to run powersync:link on {backend.app}, or {backend.app} does not exist" in result.stderr
        assert backend.secret_key not in result.stdout + result.stderr


def test_the_refusal_does_not_tell_whether_the_backend_exists(h, source):
    name, backend = instance_and_backend(h, source)
    missing = refused_over_ssh(h, "bob", ["powersync:link", name, "no-such-app"], [name])
    present = refused_over_ssh(h, "bob", ["powersync:link", name, backend.app], [name, backend.app])
    assert missing.stderr.replace("no-such-app", "APP") == present.stderr.replace(backend.app, "APP")


def test_a_user_allowed_on_both_links_and_signs_tokens(h, source):
    name, backend = instance_and_backend(h, source)
    result = h.run_over_ssh("carol", "powersync:link", name, backend.app)
    assert result.returncode == 0, result.stdout + result.stderr
    assert h.run("config:get", backend.app, "POWERSYNC_URL").stdout.strip() == f"http://{name}.example.test"
    result = h.run_over_ssh("carol", "powersync:token", name, "--sub", "user-1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(".") == 2

    # bob may use the instance, not the backend whose key signs its tokens
    result = refused_over_ssh(h, "bob", ["powersync:token", name, "--sub", "user-1"], [name, backend.app])
    assert f"Access to {backend.app} denied for bob" in result.stderr and result.stdout == ""
    # dave is allowed on neither: Dokku's own check refuses before the plugin runs
    result = refused_over_ssh(h, "dave", ["powersync:token", name, "--sub", "user-1"], [name, backend.app])
    assert f"User dave does not have permissions to run powersync:token on {name}" in result.stderr
    assert "Access denied" in result.stderr
    # unlinking changes the backend (POWERSYNC_URL, a restart): it needs the backend too
    result = refused_over_ssh(h, "bob", ["powersync:unlink", name, backend.app], [name, backend.app])
    assert f"Access to {backend.app} denied for bob" in result.stderr
    assert h.run_over_ssh("carol", "powersync:unlink", name, backend.app).returncode == 0


def test_import_links_only_to_a_backend_the_user_may_use(h, source):
    name, backend = instance_and_backend(h, source)
    exported = h.run("powersync:export", name)
    assert exported.returncode == 0, exported.stderr
    before = snapshot(h, name, backend.app)
    results = {}
    for app in (backend.app, "no-such-app"):
        result = h.run_over_ssh("bob", "powersync:import", "--link", app, input=exported.stdout)
        assert result.returncode == 1 and f"Access to {app} denied for bob" in result.stderr, result.stderr
        results[app] = result.stderr.replace(app, "APP")
    # refused before the import looks at anything: nothing made, nothing told about the backend
    assert snapshot(h, name, backend.app) == before
    assert results[backend.app] == results["no-such-app"]


def test_root_on_the_command_line_and_the_super_user_are_not_limited(h, source):
    name, backend = instance_and_backend(h, source)
    result = h.run("powersync:link", name, backend.app)
    assert result.returncode == 0, result.stdout + result.stderr
    assert h.run("powersync:token", name, "--sub", "user-1").returncode == 0
    assert h.run_over_ssh("admin", "powersync:token", name, "--sub", "user-1").returncode == 0
    assert h.run("powersync:unlink", name, backend.app).returncode == 0


def test_set_global_needs_a_global_permission(h):
    for args in (["powersync:set", "--global", "image-version", "1.2.3"],
                 # the option's place must not matter: Dokku's check sees `image-version` as the app
                 ["powersync:set", "image-version", "1.2.3", "--global"]):
        result = refused_over_ssh(h, "bob", args, [])
        assert "User bob does not have permissions to run powersync:set" in result.stderr, result.stderr
    # even when bob is allowed on an app that happens to be called like the setting
    assert h.run("apps:create", "image-version").returncode == 0
    allow(h, "image-version", "bob")
    result = refused_over_ssh(h, "bob", ["powersync:set", "image-version", "1.2.3", "--global"], [])
    assert "Access to plugin-wide settings denied for bob" in result.stderr, result.stderr
    assert "User bob does not have permissions to run powersync:set on --global" in result.stderr

    assert h.run_over_ssh("admin", "powersync:set", "--global", "image-version", "1.2.3").returncode == 0
    assert h.run("powersync:set", "--global", "image-version", "1.2.4").returncode == 0
