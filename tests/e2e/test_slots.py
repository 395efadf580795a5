"""An instance touches only its own replication slots, and apps:destroy leaves nothing behind
(real-host findings 2 and 3).

The stand-in holds its slot active over a walsender stream while it runs, as the real service
does, so dropping a running instance's slot fails here as it does on Postgres; and the harness
fires pre-delete before it stops the app's containers, as Dokku does.
"""
import re

from tests.e2e.conftest import RULES, history, make_backend, slots
from tests.e2e.jeeves import deploy_jeeves
from tests.images.names import STANDIN_REPO

FOREIGN_SLOT = "powersync_9_abcd"


def _linked(h, source: str, name: str) -> str:
    backend = make_backend(h, source)
    assert h.run("powersync:create", name, "--image", STANDIN_REPO).returncode == 0
    assert h.run("domains:set", name, f"{name}.example.test").returncode == 0
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    result = h.run("powersync:link", name, backend.app)
    assert result.returncode == 0, result.stdout + result.stderr
    return backend.app


def _prefix(h, name: str) -> str:
    return h.run("powersync:info", name, "--slot-prefix").stdout.strip()


def _own(h, source: str, name: str) -> list[str]:
    prefix = _prefix(h, name)
    # PowerSync's own slot names exactly (<prefix><version>_<4 hex>): a looser match took the
    # neighbour `X`'s `ps_X_1_2345` for one of `X-1`'s (prefix ps_X_1_) whenever the 4 hex were digits
    own = re.compile(re.escape(prefix) + r"[0-9]+_[0-9a-f]{4}")
    return [slot for slot in slots(h, source) if own.fullmatch(slot)]


def _databases(h, source: str) -> list[str]:
    result = h.run("postgres:connect", source, input="\\pset tuples_only on\nSELECT datname FROM pg_database;\n")
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def test_names_sharing_a_prefix_keep_their_own_slots(harness, source):
    """`X` and `X-two` on one server: X's unlink and destroy leave X-two's slot, even while X-two
    is stopped (as while it restarts), when Postgres would not refuse the drop."""
    h = harness
    base = f"ps-{__import__('uuid').uuid4().hex[:6]}"
    two = f"{base}-two"
    backend = _linked(h, source, base)
    _linked(h, source, two)
    [two_slot] = _own(h, source, two)
    assert h.run("ps:stop", two).returncode == 0

    result = h.run("powersync:unlink", base, backend)
    assert result.returncode == 0, result.stdout + result.stderr
    assert two_slot not in result.stdout
    assert _own(h, source, base) == [] and two_slot in slots(h, source)
    assert h.run("powersync:destroy", base, "--force").returncode == 0
    assert two_slot in slots(h, source)
    assert h.run("ps:start", two).returncode == 0


def test_apps_destroy_of_a_linked_instance_leaves_nothing(harness, source):
    """pre-delete stops the instance, then drops its slot (refused while it runs) and its storage
    database; a neighbour named with the same start keeps its slot."""
    h = harness
    base = f"ps-{__import__('uuid').uuid4().hex[:6]}"
    neighbour = f"{base}-1"
    _linked(h, source, base)
    _linked(h, source, neighbour)
    [neighbour_slot] = _own(h, source, neighbour)
    assert h.run("ps:stop", neighbour).returncode == 0
    storage = h.run("powersync:info", base, "--storage-database").stdout.strip()
    assert storage in _databases(h, source)
    assert _own(h, source, base)

    result = h.run("apps:destroy", base, "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _own(h, source, base) == []
    assert storage not in _databases(h, source)
    assert neighbour_slot in slots(h, source)
    assert "left" not in result.stdout + result.stderr
    assert history(h, base)[-1]["event"] == "instance.destroyed"
    assert h.run("ps:start", neighbour).returncode == 0


def test_adopted_instance_drops_only_the_slots_it_proves_its_own(harness):
    """Hand-made deployments share PowerSync's default prefix `powersync_` across a server: the
    plugin drops only the slot the running instance reports, and names the one it left."""
    h = harness
    d = deploy_jeeves(h, "config-b64")
    app, backend = d.powersync_app, d.backend_app
    assert h.run("powersync:adopt", app).returncode == 0
    [own] = d.current_slots()
    create = f"SELECT pg_create_logical_replication_slot('{FOREIGN_SLOT}', 'pgoutput');\n"
    assert h.run("postgres:connect", d.service, input=create).returncode == 0

    result = h.run("powersync:unlink", app, backend)
    assert result.returncode == 0, result.stdout + result.stderr
    assert d.current_slots() == [FOREIGN_SLOT]
    assert f"slot {FOREIGN_SLOT} on {d.service}: left, as it cannot be proven" in result.stdout + result.stderr
    result = h.run("powersync:destroy", app, "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    assert d.current_slots() == [FOREIGN_SLOT]
    assert own not in result.stdout


def test_an_instance_named_with_dots_links_and_unlinks(harness, source):
    """Dokku accepts dots in app names; the slot prefix and storage database map them without
    colliding with a dashed name."""
    h = harness
    name = f"ps.{__import__('uuid').uuid4().hex[:6]}"
    backend = _linked(h, source, name)
    prefix = _prefix(h, name)
    assert prefix.startswith("psd_") and "." not in prefix
    assert _own(h, source, name)
    storage = h.run("powersync:info", name, "--storage-database").stdout.strip()
    assert storage == "powersync_" + name.replace("-", "_") and storage in _databases(h, source)
    result = h.run("powersync:unlink", name, backend)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _own(h, source, name) == []
    result = h.run("powersync:destroy", name, "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    assert storage not in _databases(h, source)
