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


def test_an_inspect_the_engine_does_not_answer_is_named(tmp_path, monkeypatch):
    """Inspects and listings go over the engine's socket without the SDK: the same message."""
    import socket

    import pytest

    from powersync_plugin.adapters.docker_engine import DockerEngine, DockerUnavailable

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "engine.sock"))
    server.listen(1)  # accepts (the kernel's backlog) and never answers
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'engine.sock'}")
    monkeypatch.setenv("POWERSYNC_DOCKER_TIMEOUT", "1")
    with pytest.raises(DockerUnavailable) as raised:
        DockerEngine().web_container("ps1")
    assert "GET /containers/ps1.web.1/json within 1s" in str(raised.value)
    assert "POWERSYNC_DOCKER_TIMEOUT" in str(raised.value)
    server.close()
    with pytest.raises(DockerUnavailable, match="Cannot reach the Docker engine"):
        DockerEngine().web_container("ps1")
