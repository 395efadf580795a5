"""Every Dokku call has a timeout: a command that never answers fails the plugin's command with a
message naming the call, instead of hanging it (and its instance lock) forever."""
import time

from tests.e2e.conftest import RULES, create_instance, make_backend, snapshot


def test_a_dokku_call_that_never_answers_times_out_and_changes_nothing(harness, source):
    h = harness
    backend = make_backend(h, source)
    name = create_instance(h)
    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    before = snapshot(h, name, backend.app)
    started = time.monotonic()
    result = h.run(
        "powersync:link", name, backend.app, timeout=90,
        env={"HARNESS_HANG_COMMANDS": "domains:report", "POWERSYNC_DOKKU_TIMEOUT": "3"},
    )
    assert time.monotonic() - started < 60
    assert result.returncode == 1
    assert f"`dokku domains:report {name}" in result.stderr
    assert "did not finish within 3s" in result.stderr and "POWERSYNC_DOKKU_TIMEOUT" in result.stderr
    assert snapshot(h, name, backend.app) == before
