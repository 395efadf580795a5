"""An instance app moved to another scheduler (scheduler-k3s) is refused with a clear message,
and nothing changes: the plugin reads and stops instances through the local Docker engine."""
from tests.e2e.conftest import RULES, create_instance, make_backend, snapshot


def test_an_instance_on_k3s_is_refused(harness, source):
    h = harness
    backend = make_backend(h, source)
    name = create_instance(h)
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    assert h.run("scheduler:set", name, "selected", "k3s").returncode == 0
    before = snapshot(h, name, backend.app)
    for command in (["link", name, backend.app], ["set-rules", name], ["upgrade", name, "--image-version", "1.26.0"],
                    ["reconcile", name], ["status", name]):
        result = h.run(f"powersync:{command[0]}", *command[1:], input=RULES + "# changed\n")
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert f"{name} runs on the k3s scheduler" in result.stderr, command
    assert snapshot(h, name, backend.app) == before
    assert h.run("scheduler:set", name, "selected", "").returncode == 0
    result = h.run("powersync:link", name, backend.app)
    assert result.returncode == 0, result.stdout + result.stderr
