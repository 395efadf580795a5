"""The engine's health check of an instance: the script the derived image runs (health-check.js,
here under the host's node against a fake service on 127.0.0.1) and what `status --all` accepts
from a container inspect (health_check.read_report)."""
import hashlib
import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from powersync_plugin.adapters import health_check

TOKEN = "tok-" + "s" * 40
RULES = "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM todos\n"


class FakeService(BaseHTTPRequestHandler):
    ready = True
    seen: list = []

    def log_message(self, *args):
        pass

    def _answer(self, status, payload):
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        self._answer(200 if self.ready else 400, {"ready": self.ready})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, self.headers.get("Authorization"), body))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._answer(401, {"error": {"code": "PSYNC_S2101"}})
            return
        long_error = {"message": "x" * 5000, "level": "fatal"}
        self._answer(200, {"data": {
            "connections": [{"id": "default", "postgres_uri": "postgresql://HOST:5432/DB", "connected": True,
                             "errors": [long_error] * 10}],
            "active_sync_rules": {"content": RULES, "errors": [long_error] * 10, "connections": [
                {"slot_name": "powersync_1_abcd", "replication_lag_bytes": 1234, "initial_replication_done": True,
                 "tables": [{"name": f"t{i}"} for i in range(500)]}]},
            "deploying_sync_rules": None,
        }})


@pytest.fixture
def service():
    if shutil.which("node") is None:
        pytest.skip("no node on this host (tests/setup-host installs it)")
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeService.seen, FakeService.ready = [], True
    yield server.server_address[1]
    server.shutdown()


def check(port, token=TOKEN):
    env = {"PATH": "/usr/bin:/bin", **({"PS_API_TOKEN": token} if token else {})}
    return subprocess.run(["node", str(health_check.SCRIPT), str(port)], env=env, capture_output=True, text=True, timeout=30)


def test_the_script_reports_readiness_and_a_short_summary_without_secrets(service):
    result = check(service)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ready"] is True
    active = report["diagnostics"]["active_sync_rules"]
    assert active["content_sha256"] == hashlib.sha256(RULES.encode()).hexdigest() and "content" not in active
    assert active["connections"] == [{"slot_name": "powersync_1_abcd", "replication_lag_bytes": 1234,
                                      "initial_replication_done": True}]
    assert len(active["errors"]) == 3 and {len(e["message"]) for e in active["errors"]} == {160}
    # the engine keeps 4,096 bytes of a check's output: the summary fits, whatever the service says
    assert len(result.stdout.encode()) < 4096
    assert TOKEN not in result.stdout + result.stderr
    assert FakeService.seen == [("/api/admin/v1/diagnostics", f"Bearer {TOKEN}", {"sync_rules_content": True})]


def test_an_unready_service_is_unhealthy_and_a_wrong_token_gives_no_diagnostics(service):
    FakeService.ready = False
    result = check(service, token="wrong")
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"ready": False, "diagnostics": None}
    assert check(service, token=None).stdout.strip() == '{"ready":false,"diagnostics":null}'


def test_nothing_listening_is_unhealthy(service):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    result = check(free)
    assert (result.returncode, json.loads(result.stdout)) == (1, {"ready": False, "diagnostics": None})


NOW = 1_800_000_000.0


def inspect(age=5.0, output='{"ready":true,"diagnostics":null}\n', started_ago=100.0, running=True,
            test=("CMD", "node", "/app/health-check.js", "8080"), interval=30):
    def stamp(ago):
        from datetime import datetime, timezone

        return datetime.fromtimestamp(NOW - ago, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"

    return {
        "State": {"Running": running, "StartedAt": stamp(started_ago),
                  "Health": {"Status": "healthy", "Log": [
                      {"Start": stamp(age + 200), "End": stamp(age + 199), "ExitCode": 1, "Output": "old"},
                      {"Start": stamp(age + 0.2), "End": stamp(age), "ExitCode": 0, "Output": output}]}},
        "Config": {"Healthcheck": {"Test": list(test), "Interval": interval * 10**9, "Timeout": 10 * 10**9}},
    }


def test_a_fresh_report_is_read():
    report = health_check.read_report(inspect(age=5.0), now=NOW)
    assert report is not None and report.ready is True and report.diagnostics is None
    assert round(report.age_seconds, 1) == 5.0


@pytest.mark.parametrize("attrs", [
    inspect(age=71.0),  # older than two intervals and a timeout
    inspect(age=5.0, started_ago=3.0),  # checked before the container last started
    inspect(output="Error: Cannot find module '/app/health-check.js'"),
    inspect(output='{"ready": "yes"}'),
    inspect(running=False),
    inspect(test=("CMD-SHELL", "curl -f http://localhost:8080/")),  # someone else's check
    {"State": {"Running": True, "StartedAt": "2026-01-01T00:00:00Z"}, "Config": {}},  # no check at all
])
def test_no_report_means_a_live_probe(attrs):
    assert health_check.read_report(attrs, now=NOW) is None


def test_the_interval_is_part_of_the_instruction(monkeypatch):
    monkeypatch.setenv("POWERSYNC_HEALTH_INTERVAL", "5")
    assert health_check.dockerfile_instruction(8080) == (
        'HEALTHCHECK --interval=5s --timeout=10s --start-period=60s --retries=3 CMD ["node", "/app/health-check.js", "8080"]')
