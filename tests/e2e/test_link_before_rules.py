"""Linking before any rules are set: the service authenticates a client before it looks for
rules, so its `PSYNC_S2302` (no sync rules available, HTTP 500) to a well-signed token is the
auth proof; the rules come later through the deploy API, with no restart."""
from __future__ import annotations

import docker

from .conftest import RULES, create_instance, make_backend, sync_stream_status


def started(instance: str) -> tuple[str, str]:
    container = docker.from_env().containers.get(f"{instance}.web.1")
    return container.id, container.attrs["State"]["StartedAt"]


def test_an_instance_linked_before_any_rules_takes_them_later_without_a_restart(harness, source):
    backend = make_backend(harness, source)
    name = create_instance(harness)
    linked = harness.run("powersync:link", name, backend.app, "--kid", "backend-kid")
    assert linked.returncode == 0, linked.stdout + linked.stderr
    assert "no rules are active yet" in linked.stdout
    status, body = sync_stream_status(name, backend.token(backend.app, "backend-kid"))
    assert (status, "PSYNC_S2302" in body) == (500, True)  # authenticated; no rules to sync
    assert sync_stream_status(name, backend.token(backend.app, "wrong-kid"))[0] == 401

    before = started(name)
    assert harness.run("powersync:set-rules", name, input=RULES).returncode == 0
    assert sync_stream_status(name, backend.token(backend.app, "backend-kid"))[0] == 200
    assert started(name) == before

