"""Issue 11, telemetry: `powersync:set NAME telemetry on|off` maps to PowerSync's
`telemetry.disable_telemetry_sharing` (packages/types/src/config/PowerSyncConfig.ts at v1.25.0;
compound-config-collector.ts defaults it to false, so the service shares unless told not to).

Unlinked: journaled and applied at link. Linked: one restart through the publish path. A dry run
changes nothing; the value in effect again is a no-op. The running container's own environment is
read, so the test sees what the service actually started with.
"""
from __future__ import annotations

import base64

import docker
import yaml

from tests.e2e.conftest import RULES, create_instance, history, journal_rows, make_backend, snapshot


class _EnvLoader(yaml.SafeLoader):
    pass


_EnvLoader.add_constructor("!env", lambda loader, node: ("ENV", loader.construct_scalar(node)))


def running_config(name: str) -> dict:
    """The config the instance's running container was started with."""
    env = docker.from_env().containers.get(f"{name}.web.1").attrs["Config"]["Env"]
    encoded = next(item.split("=", 1)[1] for item in env if item.startswith("POWERSYNC_CONFIG_B64="))
    return yaml.load(base64.b64decode(encoded).decode(), Loader=_EnvLoader)


def test_telemetry_is_journaled_applied_at_link_and_republished_with_one_restart(harness, source):
    h = harness
    name = create_instance(h)
    assert h.run("powersync:info", name, "--telemetry").stdout.strip() == "on"  # the service's default

    # Not linked: a dry run changes nothing; the real run is recorded for the link.
    before = journal_rows(h)
    dry = h.run("powersync:set", name, "telemetry", "off", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert journal_rows(h) == before
    result = h.run("powersync:set", name, "telemetry", "off")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "applied at link" in result.stdout
    assert h.run("powersync:info", name, "--telemetry").stdout.strip() == "off"
    again = h.run("powersync:set", name, "telemetry", "off")
    assert again.returncode == 0 and "already off" in again.stdout
    rows = journal_rows(h)
    assert len(rows) == len(before) + 2  # the setting and its outcome, once

    backend = make_backend(h, source)
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    linked = h.run("powersync:link", name, backend.app)
    assert linked.returncode == 0, linked.stdout + linked.stderr
    assert running_config(name)["telemetry"] == {"disable_telemetry_sharing": True}

    # Linked: the dry run prints the plan and leaves everything as it was.
    world = snapshot(h, name, backend.app)
    deploys = len(h.deploys(name))
    dry = h.run("powersync:set", name, "telemetry", "on", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Plan (dry run: nothing changed)" in dry.stdout and "POWERSYNC_CONFIG_B64" in dry.stdout
    assert snapshot(h, name, backend.app) == world and len(h.deploys(name)) == deploys

    result = h.run("powersync:set", name, "telemetry", "on")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(h.deploys(name)) == deploys + 1  # one restart
    assert running_config(name)["telemetry"] == {"disable_telemetry_sharing": False}
    assert h.run("powersync:info", name, "--telemetry").stdout.strip() == "on"
    last = history(h, name)[-1]
    assert (last["event"], last["status"], last["description"]) == ("setting.changed", "applied", "Set telemetry=on")

    # The value in effect again: nothing recorded, no restart.
    rows = journal_rows(h)
    again = h.run("powersync:set", name, "telemetry", "on")
    assert again.returncode == 0 and "already on" in again.stdout
    assert journal_rows(h) == rows and len(h.deploys(name)) == deploys + 1
