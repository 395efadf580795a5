"""A dokku-postgres service named with ``_`` or upper case (issue 10, item 6; real-host finding 6).

dokku-postgres allows such names, but its DSN host turns ``_`` into ``-`` (``acce_u`` is reached
at ``dokku-postgres-acce-u``), so the plugin must find the service with ``postgres:app-links``
and not read it off the host name.
"""
from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.conftest import app_config, create_instance, history, linked_instance, make_backend, make_source, slots
from tests.e2e.jeeves import deploy_jeeves
from tests.e2e.test_refusals import refused


@pytest.mark.parametrize("prefix", ["acce_u", "Acce_U"])
def test_a_service_named_with_underscore_or_upper_case_links_rotates_and_unlinks(harness, prefix):
    h = harness
    service = make_source(h, service=f"{prefix}_{uuid.uuid4().hex[:6]}")
    name, backend = linked_instance(h, service)
    info = json.loads(h.run("powersync:info", name, "--format", "json").stdout)
    assert info["postgres-service"] == service
    assert len([slot for slot in slots(h, service) if slot.startswith(info["slot-prefix"])]) == 1
    assert h.run("postgres:app-links", name).stdout.split() == [service]

    # A new SECRET_KEY rotates the instance: the source is still recognised as the same service.
    result = h.run("config:set", "--no-restart", backend.app, "SECRET_KEY=" + "r" * 70)
    assert result.returncode == 0, result.stdout + result.stderr
    last = history(h, name)[-1]
    assert (last["event"], last["status"]) == ("backend.rotated", "applied"), last

    result = h.run("powersync:unlink", name, backend.app)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [slot for slot in slots(h, service) if slot.startswith(info["slot-prefix"])] == []
    assert "POWERSYNC_URL" not in app_config(h, backend.app)


def test_adopt_a_deployment_on_a_service_named_with_underscore(harness):
    h = harness
    d = deploy_jeeves(h, "config-b64", service=f"jv_{uuid.uuid4().hex[:6]}")
    result = h.run("powersync:adopt", d.powersync_app)
    assert result.returncode == 0, result.stdout + result.stderr
    info = json.loads(h.run("powersync:info", d.powersync_app, "--format", "json").stdout)
    assert (info["postgres-service"], info["linked-backend"]) == (d.service, d.backend_app)


def test_a_service_dsn_copied_without_a_link_is_an_external_database(harness, source):
    """A backend holding a service's DSN it is not linked to (a hand-set DATABASE_URL) is not taken
    for that service: its instance cannot reach the host without the link's --link option."""
    h = harness
    name = create_instance(h)  # storage: separate-database, which needs a dokku-postgres service
    backend = make_backend(h, None)
    dsn = h.run("postgres:info", source, "--dsn").stdout.strip()
    assert h.run("config:set", "--no-restart", backend.app, f"DATABASE_URL={dsn}").returncode == 0
    err = refused(h, ["powersync:link", name, backend.app], [name, backend.app])
    assert "is not the DSN of one linked to it" in err and f"dokku postgres:app-links {backend.app}" in err
    assert dsn.split(":")[2].split("@")[0] not in err  # the password
