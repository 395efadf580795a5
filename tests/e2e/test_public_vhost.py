"""Issue 11, second bullet: the instance's public vhost does not serve PowerSync's admin and
sync-rules APIs, even to a caller holding the API token, while clients' routes and the probes go
through. Requests go through the harness's model of Dokku's nginx proxy (a real nginx rendering
Dokku 0.38's templates, tests/harness/nginx.py) on its 127.0.0.1-published port; the plugin itself
keeps reaching the admin API inside the container.
"""
from __future__ import annotations

import http.client
import json

import pytest

from tests.e2e.conftest import linked_instance, make_source


@pytest.fixture(scope="module")
def linked(proxied):
    h = proxied
    name, backend = linked_instance(h, make_source(h))
    return h, name, backend, h.config(name)["PS_API_TOKEN"]


def through_proxy(h, host: str, method: str, path: str, headers: dict | None = None, body: str | None = None):
    """(status, first bytes of the body): a streaming answer is cut after its first chunk."""
    port = int(h.proxy_url().rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read1(4096).decode(errors="replace")
    finally:
        conn.close()


def admin_headers(token: str) -> dict:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def test_admin_and_sync_rules_apis_are_refused_on_the_public_vhost(linked):
    h, name, _backend, token = linked
    host = f"{name}.example.test"
    refused = [
        ("POST", "/api/admin/v1/diagnostics", "{}"),
        ("GET", "/api/sync-rules/v1/current", None),
        ("POST", "/api/sync-rules/v1/deploy", "{}"),
        ("POST", "/api/admin/v1/execute-sql", "{}"),
        # spellings nginx normalises before matching and the service might still route
        ("POST", "//api/admin/v1/diagnostics", "{}"),
        ("POST", "/api/%61dmin/v1/diagnostics", "{}"),
        ("POST", "/sync/../api/admin/v1/diagnostics", "{}"),
        ("POST", "/API/Admin/v1/diagnostics", "{}"),
    ]
    for method, path, body in refused:
        status, text = through_proxy(h, host, method, path, admin_headers(token), body)
        assert status in (403, 404), (method, path, status, text)
        assert "PSYNC_" not in text and "connections" not in text, (path, text)  # nginx answered, not PowerSync


def test_clients_routes_and_probes_still_reach_the_service(linked):
    h, name, backend, _token = linked
    host = f"{name}.example.test"
    status, text = through_proxy(h, host, "GET", "/probes/readiness")
    assert status == 200, text
    client = backend.token(backend.app, None)
    status, text = through_proxy(h, host, "POST", "/sync/stream",
                                 {"Authorization": f"Token {client}", "Content-Type": "application/json"}, "{}")
    assert status == 200, text
    status, text = through_proxy(h, host, "POST", "/sync/stream", {"Content-Type": "application/json"}, "{}")
    assert status == 401 and "PSYNC_S2106" in text  # forwarded: the service itself asks for a token
    # the stand-in has no write-checkpoint route: its own 404 shows the request was forwarded
    status, text = through_proxy(h, host, "GET", "/write-checkpoint2.json", {"Authorization": f"Token {client}"})
    assert "PSYNC_" in text, (status, text)


def test_the_plugin_still_uses_the_admin_api_and_the_rule_survives_a_proxy_rebuild(linked):
    h, name, _backend, token = linked
    host = f"{name}.example.test"
    status = h.run("powersync:status", name, "--format", "json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)  # diagnostics, read inside the container
    rebuilt = h.run("proxy:build-config", name)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert through_proxy(h, host, "POST", "/api/admin/v1/diagnostics", admin_headers(token), "{}")[0] in (403, 404)
    assert through_proxy(h, host, "GET", "/probes/readiness")[0] == 200


def through_tls(h, host: str, method: str, path: str, headers: dict | None = None, body: str = "") -> tuple[int, str]:
    """The same over HTTPS on the proxy's port 443, with the domain as SNI (Dokku's catch-all
    rejects a handshake without a known name); the test certificate is self-signed."""
    import socket
    import ssl

    port = int(h.proxy_url("https").rsplit(":", 1)[1])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(("\r\n".join(lines) + "\r\n\r\n" + body).encode())
            answer = b""
            while b"\r\n\r\n" not in answer or len(answer) < 4096:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                answer += chunk
    head, _, rest = answer.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split(" ", 2)[1]), rest


def test_with_a_certificate_both_server_blocks_refuse_the_apis(linked):
    from tests.harness.fixture import self_signed_cert

    h, name, _backend, token = linked
    host = f"{name}.example.test"
    crt, key = self_signed_cert(h, host)
    added = h.run("certs:add", name, str(crt), str(key))
    assert added.returncode == 0, added.stdout + added.stderr
    try:
        assert "(using app-supplied template)" in added.stdout
        status, text = through_tls(h, host, "POST", "/api/admin/v1/diagnostics", admin_headers(token), "{}")
        assert status == 404 and "PSYNC_" not in text, (status, text)
        status, text = through_tls(h, host, "GET", "/api/sync-rules/v1/current", admin_headers(token))
        assert status == 404 and "PSYNC_" not in text, (status, text)
        assert through_tls(h, host, "GET", "/probes/readiness")[0] == 200
        # port 80 now redirects to https, and refuses the APIs itself rather than redirecting them
        assert through_proxy(h, host, "GET", "/probes/readiness")[0] == 301
        assert through_proxy(h, host, "POST", "/api/admin/v1/diagnostics", admin_headers(token), "{}")[0] == 404
    finally:  # the other tests of this module use plain http
        assert h.run("certs:remove", name).returncode == 0
