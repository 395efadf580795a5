"""A Docker call that times out gets a message naming the call and the knob."""
import requests

from powersync_plugin.adapters.docker_engine import timeout_message


def test_a_timed_out_docker_call_is_named(monkeypatch):
    monkeypatch.setenv("POWERSYNC_DOCKER_TIMEOUT", "7")
    request = requests.Request("POST", "http+docker://localhost/v1.47/containers/abc/stop").prepare()
    message = timeout_message(requests.exceptions.ReadTimeout("read timed out", request=request))
    assert "POST /v1.47/containers/abc/stop" in message and "within 7s" in message
    assert "POWERSYNC_DOCKER_TIMEOUT" in message


def test_other_errors_are_not_taken_for_timeouts():
    assert timeout_message(requests.exceptions.ConnectionError("refused")) is None
    assert timeout_message(ValueError("x")) is None
