"""Requests to an instance travel through one relay per container per command (exec_channel.py):
one `docker exec` of the image's node whose stdin takes the requests. Checked against the real
engine, through the harness's logging Docker proxy, with a small echo server in the stand-in's
image standing in for the service."""
from __future__ import annotations

import hashlib
import json
import tempfile
import time

import docker
import pytest

from powersync_plugin.adapters.docker_engine import DockerEngine
from tests.harness.dockerproxy import DockerProxy
from tests.images.names import STANDIN_REPO

from .conftest import unique

# Answers every request with what it received; /slow streams a line every 100 ms, and says
# "done" after five.
ECHO_SERVER = r"""
const crypto = require('crypto');
require('http').createServer((req, res) => {
  if (req.url === '/slow') {
    let n = 0;
    const timer = setInterval(() => { n += 1; res.write(n === 5 ? 'done\n' : 'tick\n'); if (n === 7) { clearInterval(timer); res.end(); } }, 100);
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.writeHead(201, {'content-type': 'application/json'});
    res.end(JSON.stringify({method: req.method, url: req.url, auth: req.headers.authorization || null,
                            length: body.length, sha256: crypto.createHash('sha256').update(body).digest('hex')}));
  });
}).listen(8080, '127.0.0.1');
"""


@pytest.fixture
def echo(images):
    client = docker.from_env()
    container = client.containers.run(
        f"{STANDIN_REPO}:1.25.0", entrypoint=["node", "-e", ECHO_SERVER], command=[], detach=True,
        name=unique("echo"), labels={"dokku-powersync-test": "1"}, network_mode="none",
    )
    try:
        deadline = time.monotonic() + 20
        while DockerEngine().http(container.id, "GET", "/", timeout=2).status != 201:
            assert time.monotonic() < deadline, "the echo server did not start"
            time.sleep(0.2)
        yield container
    finally:
        container.remove(force=True)


@pytest.fixture
def proxy(monkeypatch):
    with tempfile.TemporaryDirectory() as root, DockerProxy(root, owner="root") as running:
        monkeypatch.setenv("DOCKER_HOST", running.host)
        yield running


def execs(proxy: DockerProxy, since: int) -> list[dict]:
    return [r for r in proxy.requests()[since:] if r["method"] == "POST" and r["path"].endswith("/exec")]


def test_a_commands_requests_share_one_exec_and_arrive_intact(echo, proxy):
    engine, since = DockerEngine(), proxy.mark()
    body = "bucket_definitions: # " + "x" * 300_000  # larger than one argument or environment string may be
    answers = [engine.http(echo.id, "POST", f"/n/{n}", headers={"Authorization": "Bearer t0ken"}, body=body)
               for n in range(3)]
    answers.append(engine.http(echo.id, "GET", "/get"))
    seen = [answer.json() for answer in answers]
    assert [answer.status for answer in answers] == [201] * 4
    assert [s["url"] for s in seen] == ["/n/0", "/n/1", "/n/2", "/get"]
    assert {s["sha256"] for s in seen[:3]} == {hashlib.sha256(body.encode()).hexdigest()}
    assert seen[0]["auth"] == "Bearer t0ken" and seen[3] == {**seen[3], "method": "GET", "length": 0}
    assert len(execs(proxy, since)) == 1
    # The relay's command line (what `ps` shows every user) is the fixed script: no token, no body.
    top = echo.top(ps_args="-o pid,args")["Processes"]
    relay = [p[-1] for p in top if "readline" in p[-1]]
    assert relay and all("t0ken" not in line for line in relay)


def test_stop_at_ends_a_streamed_answer_early(echo, proxy):
    started = time.monotonic()
    answer = DockerEngine().http(echo.id, "GET", "/slow", timeout=5, stop_at="done")
    assert answer.status == 200 and answer.body.endswith("done\n") and "tick" in answer.body
    assert time.monotonic() - started < 4


def test_a_relay_whose_container_restarted_is_replaced(echo, proxy):
    engine, since = DockerEngine(), proxy.mark()
    assert engine.http(echo.id, "GET", "/one").status == 201
    echo.restart(timeout=1)
    deadline = time.monotonic() + 20
    while (answer := engine.http(echo.id, "GET", "/two", timeout=2)).status != 201:
        # Only the server's own start may refuse; the dead relay must not answer for the new one.
        assert "ECONNREFUSED" in answer.error and time.monotonic() < deadline, answer
        time.sleep(0.2)
    assert len(execs(proxy, since)) == 2


def test_a_stopped_container_answers_status_0_with_the_reason(echo, proxy):
    engine = DockerEngine()
    assert engine.http(echo.id, "GET", "/").status == 201
    echo.stop(timeout=1)
    answer = engine.http(echo.id, "GET", "/")
    assert answer.status == 0 and "container unavailable" in answer.error
    assert json.dumps(answer.error).count("t0ken") == 0
