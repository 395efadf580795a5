"""info's container state comes from one request to the engine's socket: the one DOCKER_HOST
names, as the SDK would use (the harness's logging proxy, a rootless engine)."""
import socket
import threading

import pytest

from powersync_plugin.adapters.docker_socket import engine_request, quick_container_status


def serve_once(path, status: int, body: bytes, seen: list, raw: bytes = b""):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer():
        connection, _ = server.accept()
        seen.append(connection.recv(65536))
        connection.sendall(raw or b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
        connection.close()
        server.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_the_state_comes_from_the_socket_docker_host_names(tmp_path, monkeypatch):
    seen = []
    thread = serve_once(tmp_path / "engine.sock", 200, b'{"State": {"Running": false}}', seen)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'engine.sock'}")
    assert quick_container_status("ps1.web.1") == "stopped"
    thread.join(5)
    assert [request.split(b"\r\n", 1)[0] for request in seen] == [b"GET /containers/ps1.web.1/json HTTP/1.0"]  # the engine then closes, never chunks


def test_a_missing_container_and_an_unreachable_engine(tmp_path, monkeypatch):
    thread = serve_once(tmp_path / "engine.sock", 404, b'{"message": "No such container"}', [])
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'engine.sock'}")
    assert quick_container_status("ps1.web.1") == "missing"
    thread.join(5)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'nothing.sock'}")
    assert quick_container_status("ps1.web.1") == "unknown (Docker unreachable)"


def test_a_request_carries_its_body_and_an_answer_that_is_not_http_is_an_error(tmp_path):
    seen = []
    thread = serve_once(tmp_path / "engine.sock", 201, b'{"Id": "abc"}', seen)
    assert engine_request("POST", "/containers/x/exec", b'{"Cmd": ["node"]}', str(tmp_path / "engine.sock")) == (
        201, b'{"Id": "abc"}')
    thread.join(5)
    assert seen[0].endswith(b'Content-Length: 17\r\n\r\n{"Cmd": ["node"]}')
    thread = serve_once(tmp_path / "other.sock", 0, b"", [], raw=b"SSH-2.0-OpenSSH_9.2\r\n")
    with pytest.raises(OSError, match="is not HTTP"):
        engine_request("GET", "/_ping", socket_path=str(tmp_path / "other.sock"))
    thread.join(5)
