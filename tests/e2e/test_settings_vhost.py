"""Issue 14, `metrics`: the Prometheus port answers on the host's 127.0.0.1, and the instance's
public vhost (the harness's model of Dokku's nginx proxy, a real nginx) does not serve it."""
from __future__ import annotations

from tests.e2e.conftest import linked_instance, make_source
from tests.e2e.test_public_vhost import through_proxy
from tests.e2e.test_settings import free_port_pair, get, host_port


def test_metrics_answer_on_the_host_loopback_and_not_on_the_public_vhost(proxied):
    h = proxied
    name, _backend = linked_instance(h, make_source(h))
    host = f"{name}.example.test"
    assert through_proxy(h, host, "GET", "/probes/readiness")[0] == 200  # the vhost routes to the instance
    port = free_port_pair()
    result = h.run("powersync:set", name, "metrics", str(port))
    assert result.returncode == 0, result.stdout + result.stderr
    _address, published = host_port(name, port)
    status, _type, body = get(f"http://127.0.0.1:{published}/metrics")
    assert status == 200 and "# TYPE powersync_concurrent_connections gauge" in body
    for vhost in (host, f"{host}:{port}"):
        status, body = through_proxy(h, vhost, "GET", "/metrics")
        assert "# TYPE" not in body, (vhost, status, body)
