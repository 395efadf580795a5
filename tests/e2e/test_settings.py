"""Issue 14, service settings through `powersync:set NAME KEY VALUE`: memory, log-level, metrics.

Each is journaled, shown by `info`, and applied to a linked instance with one restart (the
web container is replaced once); the service is then checked to run with it: the container's
memory limit and Node heap, the level PowerSync's logger reports, the Prometheus exposition on
the host's loopback. Dry runs and refused values change nothing; `--no-restart` records only.
"""
from __future__ import annotations

import json
import random
import socket
import time
import urllib.error
import urllib.request

import docker
import pytest

from tests.e2e.conftest import create_instance, history, journal_rows, linked_instance, make_backend, snapshot, RULES
from tests.e2e.test_telemetry import running_config

MB = 1024 * 1024


def web(name: str):
    return docker.from_env().containers.get(f"{name}.web.1")


def env_of(name: str) -> dict:
    return dict(item.split("=", 1) for item in web(name).attrs["Config"]["Env"])


def info(h, name: str) -> dict:
    result = h.run("powersync:info", name, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def set_ok(h, name: str, *args: str):
    result = h.run("powersync:set", name, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def free_port_pair() -> int:
    """A port P with P and P+1 free on the host's loopback."""
    for _ in range(50):
        port = random.randint(20000, 40000)
        try:
            for candidate in (port, port + 1):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", candidate))
            return port
        except OSError:
            continue
    raise AssertionError("no free port pair")


def host_port(name: str, port: int) -> tuple[str, int]:
    web_container = web(name)
    web_container.reload()
    binding = web_container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]
    return binding["HostIp"], int(binding["HostPort"])


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers.get("content-type", ""), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, "", ""


def other_host_address() -> str:
    """An address of this host that is not loopback (the docker bridge's gateway at least)."""
    network = docker.from_env().networks.get("bridge")
    return network.attrs["IPAM"]["Config"][0]["Gateway"]


@pytest.fixture(scope="module")
def linked(harness, source):
    return linked_instance(harness, source)


def test_memory_sets_limit_and_heap_with_one_restart(harness, linked):
    h, (name, backend) = harness, linked
    assert info(h, name)["memory"] == "400m"
    world, deploys, before = snapshot(h, name, backend.app), len(h.deploys(name)), web(name).id

    dry = h.run("powersync:set", name, "memory", "1g", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "set memory limit on" in dry.stdout and "1024m" in dry.stdout and "NODE_OPTIONS" in dry.stdout
    assert snapshot(h, name, backend.app) == world and len(h.deploys(name)) == deploys

    result = set_ok(h, name, "memory", "1g")
    assert len(h.deploys(name)) == deploys + 1 and web(name).id != before  # one restart
    assert web(name).attrs["HostConfig"]["Memory"] == 1024 * MB
    assert env_of(name)["NODE_OPTIONS"] == "--max-old-space-size=819"
    assert h.run("powersync:info", name, "--memory").stdout.strip() == "1024m"
    assert info(h, name)["memory"] == "1024m"
    last = history(h, name)[-1]
    assert (last["event"], last["status"], last["description"]) == ("setting.changed", "applied", "Set memory=1024m")
    assert "Published to" in result.stdout

    rows, deploys = journal_rows(h), len(h.deploys(name))
    again = set_ok(h, name, "memory", "1024m")
    assert "already 1024m" in again.stdout and journal_rows(h) == rows and len(h.deploys(name)) == deploys


def test_log_level_reaches_the_service_logger(harness, linked):
    h, (name, _) = harness, linked
    assert h.run("powersync:info", name, "--log-level").stdout.strip() == "info"
    deploys, before = len(h.deploys(name)), web(name).id
    set_ok(h, name, "log-level", "DEBUG")
    assert len(h.deploys(name)) == deploys + 1 and web(name).id != before
    assert running_config(name)["system"] == {"logging": {"level": "debug"}}
    logs = web(name).logs().decode()
    assert 'Configured logger with level \\"debug\\"' in logs  # JSON lines, as the real image logs
    assert '"level":"debug"' in logs  # the service now writes debug lines (JSON, as the real image)
    assert info(h, name)["log-level"] == "debug"

    set_ok(h, name, "log-level", "warn")
    logs = web(name).logs().decode()
    assert 'Configured logger with level \\"warn\\"' in logs and '"level":"debug"' not in logs
    assert '"message":"Service ready"' not in logs
    set_ok(h, name, "log-level", "info")  # the default again, for the tests after this one


def test_metrics_on_the_host_loopback_only_and_through_restarts(harness, linked):
    h, (name, backend) = harness, linked
    port = free_port_pair()
    ports_map = h.run("ports:report", name, "--ports-map").stdout.split()
    deploys, before = len(h.deploys(name)), web(name).id

    dry = h.run("powersync:set", name, "metrics", str(port), "--dry-run")
    assert dry.returncode == 0 and f"-p 127.0.0.1:{port}-{port + 1}:{port}" in dry.stdout, dry.stdout + dry.stderr
    assert f"127.0.0.1:{port}" not in h.run("docker-options:list", name, "--phase", "deploy").stdout
    assert len(h.deploys(name)) == deploys and web(name).id == before

    set_ok(h, name, "metrics", str(port))
    assert len(h.deploys(name)) == deploys + 1 and web(name).id != before
    assert running_config(name)["telemetry"]["prometheus_port"] == port
    assert f"-p 127.0.0.1:{port}-{port + 1}:{port}" in h.run("docker-options:list", name, "--phase", "deploy").stdout
    address, published = host_port(name, port)
    assert address == "127.0.0.1" and published in (port, port + 1)
    status, content_type, body = get(f"http://127.0.0.1:{published}/metrics")
    assert status == 200 and content_type.startswith("text/plain"), (status, content_type)
    assert "# TYPE powersync_concurrent_connections gauge" in body
    # not on the host's other addresses, and not a proxied port of the app
    with socket.socket() as probe:
        probe.settimeout(2)
        assert probe.connect_ex((other_host_address(), published)) != 0
    assert h.run("ports:report", name, "--ports-map").stdout.split() == ports_map
    assert info(h, name)["metrics"] == str(port)

    # A zero-downtime restart starts the new container while the old one holds its port: the
    # new one takes the other port of the pair, and metrics keep answering.
    set_ok(h, name, "log-level", "verbose")
    address, again = host_port(name, port)
    assert again != published and again in (port, port + 1)
    assert get(f"http://127.0.0.1:{again}/metrics")[0] == 200

    set_ok(h, name, "metrics", "off")
    set_ok(h, name, "log-level", "info")
    assert "telemetry" not in running_config(name) or "prometheus_port" not in running_config(name)["telemetry"]
    assert f"127.0.0.1:{port}" not in h.run("docker-options:list", name, "--phase", "deploy").stdout
    assert f"{port}/tcp" not in (web(name).attrs["NetworkSettings"]["Ports"] or {})
    assert info(h, name)["metrics"] == "off"


@pytest.mark.parametrize("key,value,message", [
    ("memory", "abc", "Invalid memory 'abc'"),
    ("memory", "64m", "too small"),
    ("log-level", "loud", "Invalid value 'loud' for log-level"),
    ("metrics", "80", "Invalid value '80' for metrics"),
    ("metrics", "8080", "Invalid value '8080' for metrics"),
    ("compact-schedule", "every day", "Invalid value 'every day' for compact-schedule"),
    ("colour", "blue", "Unknown setting 'colour'"),
])
def test_bad_values_are_refused_and_change_nothing(harness, linked, key, value, message):
    h, (name, backend) = harness, linked
    world, deploys = snapshot(h, name, backend.app), len(h.deploys(name))
    result = h.run("powersync:set", name, key, value)
    assert result.returncode != 0 and message in result.stderr, result.stdout + result.stderr
    assert result.stderr.startswith(" !     ")
    assert snapshot(h, name, backend.app) == world and len(h.deploys(name)) == deploys


def test_unlinked_settings_apply_at_link_and_no_restart_waits_for_reconcile(harness, source):
    h = harness
    name = create_instance(h)
    before = journal_rows(h)
    assert h.run("powersync:set", name, "memory", "600m", "--dry-run").returncode == 0
    assert journal_rows(h) == before
    assert "applied at link" in set_ok(h, name, "memory", "600m").stdout
    assert info(h, name)["memory"] == "600m"

    backend = make_backend(h, source)
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    linked = h.run("powersync:link", name, backend.app)
    assert linked.returncode == 0, linked.stdout + linked.stderr
    assert web(name).attrs["HostConfig"]["Memory"] == 600 * MB
    assert env_of(name)["NODE_OPTIONS"] == "--max-old-space-size=480"

    deploys, container = len(h.deploys(name)), web(name).id
    result = set_ok(h, name, "log-level", "warn", "--no-restart")
    assert "powersync:reconcile" in result.stdout
    assert len(h.deploys(name)) == deploys and web(name).id == container
    assert "system" not in running_config(name)
    assert info(h, name)["log-level"] == "warn"
    last = history(h, name)[-1]
    assert (last["event"], last["status"]) == ("setting.changed", "stored")

    reconciled = h.run("powersync:reconcile", name)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert len(h.deploys(name)) == deploys + 1
    assert running_config(name)["system"] == {"logging": {"level": "warn"}}


def compacted(h, *command: str) -> str:
    """The output of a compaction, once the instance's rules are active (before, the service
    finds no active instance to compact)."""
    for _ in range(30):
        result = h.run(*command)
        assert result.returncode == 0, result.stdout + result.stderr
        if "Successfully compacted storage." in result.stdout:
            return result.stdout
        assert "No active instance to compact" in result.stdout, result.stdout
        time.sleep(1)
    raise AssertionError("the rules never became active")


def test_compact_schedule_is_a_dokku_cron_task_and_compact_runs_now(harness, linked):
    h, (name, backend) = harness, linked
    assert h.run("powersync:info", name, "--compact-schedule").stdout.strip() == "off"
    assert json.loads(h.run("cron:list", name, "--format", "json").stdout) == []
    world, deploys, before = snapshot(h, name, backend.app), len(h.deploys(name)), web(name).id

    dry = h.run("powersync:set", name, "compact-schedule", "0  3 * * *", "--dry-run")
    assert dry.returncode == 0 and "deploy image" in dry.stdout, dry.stdout + dry.stderr
    assert snapshot(h, name, backend.app) == world and len(h.deploys(name)) == deploys

    set_ok(h, name, "compact-schedule", "0  3 * * *")
    assert len(h.deploys(name)) == deploys + 1 and web(name).id != before
    tasks = json.loads(h.run("cron:list", name, "--format", "json").stdout)
    assert [(task["command"], task["schedule"]) for task in tasks] == [("compact", "0 3 * * *")]
    listed = h.run("cron:list", name).stdout.splitlines()
    assert listed[0].split() == ["ID", "Schedule", "Concurrency", "Maintenance", "Command"]
    assert listed[1].startswith(tasks[0]["id"]) and listed[1].endswith("compact")
    assert info(h, name)["compact-schedule"] == "0 3 * * *"
    # what cron runs on schedule: the service's own compact, in a one-off container
    assert "Compacting storage for all buckets..." in compacted(h, "cron:run", name, tasks[0]["id"])

    # the same, by hand (the way when cron is off)
    output = compacted(h, "powersync:compact", name)
    assert output.startswith(f"=====> Compacting the bucket storage of {name}") and f"-----> Compacted {name}" in output

    deploys = len(h.deploys(name))
    set_ok(h, name, "compact-schedule", "off")
    assert len(h.deploys(name)) == deploys + 1
    assert json.loads(h.run("cron:list", name, "--format", "json").stdout) == []
    assert info(h, name)["compact-schedule"] == "off"


def test_compact_refuses_an_unlinked_instance(harness, instance):
    world = snapshot(harness, instance)
    result = harness.run("powersync:compact", instance)
    assert result.returncode == 1 and "is not linked" in result.stderr, result.stdout + result.stderr
    assert snapshot(harness, instance) == world


def test_metrics_port_taken_on_the_host_fails_and_restores(harness, linked):
    """Both host ports held by another process: the new container cannot start, the publish
    fails, and the option, config and running container are what they were."""
    h, (name, backend) = harness, linked
    port = free_port_pair()
    holders = []
    try:
        for candidate in (port, port + 1):
            holder = socket.socket()
            holder.bind(("127.0.0.1", candidate))
            holder.listen()
            holders.append(holder)
        options, container = h.run("docker-options:list", name, "--phase", "deploy").stdout, web(name).id
        config = h.config(name)
        result = h.run("powersync:set", name, "metrics", str(port))
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Restored" in result.stderr, result.stderr
    finally:
        for holder in holders:
            holder.close()
    assert h.run("docker-options:list", name, "--phase", "deploy").stdout == options
    assert h.config(name) == config and web(name).id == container and web(name).status == "running"
    assert info(h, name)["metrics"] == "off"
    last = history(h, name)[-1]
    assert (last["event"], last["status"]) == ("setting.changed", "failed")


def test_reconcile_puts_back_a_memory_limit_changed_by_hand(harness, linked):
    h, (name, _backend) = harness, linked
    wanted = info(h, name)["memory"]
    assert h.run("resource:limit", "--memory", "300m", name).returncode == 0
    assert h.run("ps:restart", name).returncode == 0
    assert web(name).attrs["HostConfig"]["Memory"] == 300 * MB
    dry = h.run("powersync:reconcile", name, "--dry-run")
    assert dry.returncode == 0 and f"set memory limit on {name} {wanted}" in dry.stdout, dry.stdout + dry.stderr
    deploys = len(h.deploys(name))
    result = h.run("powersync:reconcile", name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(h.deploys(name)) == deploys + 1
    assert web(name).attrs["HostConfig"]["Memory"] == int(wanted[:-1]) * MB
    assert "matches its journal" in h.run("powersync:reconcile", name).stdout
