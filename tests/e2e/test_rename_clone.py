"""Issue 6: `apps:rename` and `apps:clone` of instances and of linked backends keep links and
instance names right (post-app-rename-setup, post-app-rename, post-app-clone-setup)."""
import json

from tests.e2e.conftest import (
    RULES, app_config, history, linked_instance, make_backend, make_source, slots, sync_stream_status, unique,
)
from tests.harness.fixture import make_harness
from tests.images.names import STANDIN_REPO


def info(h, name, flag):
    result = h.run("powersync:info", name, flag)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_a_renamed_instance_keeps_its_slots_storage_history_and_backend(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    prefix = info(h, name, "--slot-prefix")
    storage = info(h, name, "--storage-database")
    slots_before = [slot for slot in slots(h, source) if slot.startswith(prefix)]
    assert slots_before
    new = unique("moved")

    result = h.run("apps:rename", name, new)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"PowerSync instance {name} is now {new}" in result.stdout + result.stderr

    # Same slots and storage: the rebuilt app resumes replication, nothing is reprocessed.
    assert info(h, new, "--slot-prefix") == prefix and info(h, new, "--storage-database") == storage
    assert [slot for slot in slots(h, source) if slot.startswith(prefix)] == slots_before
    assert info(h, new, "--linked-backend") == backend.app
    assert sync_stream_status(new, backend.token(backend.app, None))[0] == 200

    # The old name's history ends there; the new one continues it, nothing rewritten.
    old_rows, new_rows = history(h, name), history(h, new)
    assert old_rows[-1]["description"] == f"Renamed to {new} (apps:rename; history continues there)"
    assert new_rows[:-1] == old_rows[:-1]
    assert new_rows[-1]["event"] == "instance.renamed_from" and new_rows[-1]["status"] == "observed"
    refused = h.run("powersync:info", name)
    assert refused.returncode != 0 and f"renamed to {new}" in refused.stderr
    listed = [row["name"] for row in json.loads(h.run("powersync:list", "--format", "json").stdout)]
    assert new in listed and name not in listed

    # Every command works under the new name; destroy tears down the same slots.
    assert h.run("powersync:set-rules", new, input=RULES).returncode == 0
    result = h.run("powersync:unlink", new, backend.app)
    assert result.returncode == 0, result.stdout + result.stderr
    result = h.run("powersync:destroy", new, "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [slot for slot in slots(h, source) if slot.startswith(prefix)]


def test_a_renamed_backend_stays_linked_without_restarting_the_instance(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    deploys = len(h.deploys(name))
    new = unique("api-moved")

    result = h.run("apps:rename", backend.app, new)
    assert result.returncode == 0, result.stdout + result.stderr
    assert info(h, name, "--linked-backend") == new
    assert len(h.deploys(name)) == deploys  # the backend's pre-delete did not unlink the instance
    assert history(h, name)[-1]["description"] == f"Backend {backend.app} renamed to {new} (apps:rename)"
    assert app_config(h, new)["POWERSYNC_URL"] == info(h, name, "--url")

    # The link follows the new name: a key change on it rotates the instance.
    rotated = h.run("config:set", new, "SECRET_KEY=" + "r" * 64)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert history(h, name)[-1]["event"] == "backend.rotated"
    result = h.run("powersync:unlink", name, new)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_cloned_instance_is_a_separate_unlinked_instance_with_the_same_rules(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    clone = unique("copy")

    result = h.run("apps:clone", "--skip-deploy", name, clone)
    assert result.returncode == 0, result.stdout + result.stderr
    assert info(h, clone, "--rules-digest") == info(h, name, "--rules-digest")
    assert info(h, clone, "--linked-backend") == "-"
    assert info(h, clone, "--slot-prefix") != info(h, name, "--slot-prefix")
    rows = history(h, clone)
    assert rows[0]["description"].endswith(f"cloned from {name})") and rows[0]["status"] == "applied"
    assert rows[1]["description"] == f"Copied from {name} r1"

    copied, original = app_config(h, clone), app_config(h, name)
    assert not {"POWERSYNC_CONFIG_B64", "PS_SECRET_KEY_B64", "PS_DATA_SOURCE_URI", "DATABASE_URL"} & set(copied)
    assert clone not in h.run("postgres:info", source, "--links").stdout.split()
    assert copied["PS_API_TOKEN"] != original["PS_API_TOKEN"]
    # The original is untouched and still serves.
    assert sync_stream_status(name, backend.token(backend.app, None))[0] == 200
    assert h.run("powersync:destroy", clone, "--force").returncode == 0


def test_a_cloned_backend_is_not_linked_and_says_so(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    clone = unique("api-copy")
    result = h.run("apps:clone", "--skip-deploy", backend.app, clone)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{clone} is a copy of {backend.app}, which PowerSync instance {name} trusts" in result.stdout + result.stderr
    assert info(h, name, "--linked-backend") == backend.app
    assert h.run("apps:destroy", clone, "--force").returncode == 0
    assert info(h, name, "--linked-backend") == backend.app


def test_a_clone_deployed_by_dokku_fails_its_deploy_until_linked_and_stays_consistent(harness, source):
    h = harness
    name, _ = linked_instance(h, source)
    clone = unique("copy")
    result = h.run("apps:clone", name, clone)
    assert result.returncode != 0  # Dokku's rebuild: the clone has no config until it is linked
    assert "clone with `dokku apps:clone --skip-deploy`" in result.stdout + result.stderr
    assert info(h, clone, "--linked-backend") == "-" and info(h, clone, "--pending-change") == "-"
    assert h.run("powersync:destroy", clone, "--force").returncode == 0


def test_a_rename_that_moves_the_instance_url_repoints_the_backend(images):
    # Its own harness: a global vhost changes what apps:create does for every later test.
    h = make_harness()
    try:
        assert h.install_plugin().returncode == 0
        assert h.run("domains:set-global", "apps.example.test").returncode == 0
        backend = make_backend(h, make_source(h))
        name, new = unique("ps"), unique("moved")
        assert h.run("powersync:create", name, "--image", STANDIN_REPO).returncode == 0
        assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
        result = h.run("powersync:link", name, backend.app)
        assert result.returncode == 0, result.stdout + result.stderr
        assert app_config(h, backend.app)["POWERSYNC_URL"] == f"http://{name}.apps.example.test"

        result = h.run("apps:rename", name, new)
        assert result.returncode == 0, result.stdout + result.stderr
        assert app_config(h, backend.app)["POWERSYNC_URL"] == f"http://{new}.apps.example.test"
        assert info(h, new, "--url") == f"http://{new}.apps.example.test"
        assert history(h, new)[-1]["event"] == "instance.url_changed"
        assert sync_stream_status(new, backend.token(backend.app, None))[0] == 200

        result = h.run("powersync:unlink", new, backend.app)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "POWERSYNC_URL" not in app_config(h, backend.app)
    finally:
        h.cleanup()
