"""HTTP requests to a PowerSync instance through one long-lived `docker exec` per container.

The plugin never routes to container IPs: requests run inside the container with the image's
own `node`. Starting an exec and a node process costs about 150 ms on a 2-core host, more than
most admin requests take to answer, and one command makes several (validate, /current, deploy,
activation polls, readiness, diagnostics). So the first request to a container starts one relay
process there, and every later request of the same command is a line on its stdin and a line on
its stdout: the start cost is paid once per container per command.

Standard library only, over the engine's API socket (the exec is attached by hijacking the
connection, as `docker exec -i` does), so that the read commands can use it without the SDK.

What crosses the channel: the request (method, URL, headers with the API token or a client's
JWT, body) travels on the relay's stdin, which nothing else on the host can read; the relay's
command line, which every user sees in `ps`, is the fixed script below.
"""
from __future__ import annotations

import json
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from powersync_plugin import settings
from powersync_plugin.adapters.docker_socket import engine_request, engine_socket

# Runs inside the instance container: one JSON request per stdin line, one JSON answer per stdout
# line, in order. Node's `http` module, not `fetch`: fetch's first use loads undici, about 120 ms
# of the relay's start here, more than node's own start. Redirects are not followed (a 3xx is not
# readiness); `stop_at` ends a streamed body (the sync stream) once it has shown what the caller
# waits for; bodies are capped; the timeout covers the whole exchange.
RELAY_SCRIPT = r"""
const http = require('http');
const lines = require('readline').createInterface({input: process.stdin});
let queue = Promise.resolve();
lines.on('line', (line) => {
  queue = queue.then(() => exchange(line)).then((out) => process.stdout.write(JSON.stringify(out) + '\n'));
});
function exchange(line) {
  return new Promise((resolve) => {
    let r;
    try { r = JSON.parse(line); } catch (e) { resolve({status: 0, error: 'not a request: ' + e.message}); return; }
    const started = performance.now();
    let settled = false;
    const done = (out) => { if (!settled) { settled = true; clearTimeout(timer); resolve(out); } };
    const failed = (e) => done({status: 0, error: String(e && e.message || e)});
    const headers = Object.assign({}, r.headers);
    if (r.body != null) headers['Content-Length'] = Buffer.byteLength(r.body);
    const req = http.request(r.url, {method: r.method, headers}, (res) => {
      let text = '';
      const answered = () => done({status: res.statusCode, body: text, ms: performance.now() - started});
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
        if ((r.stop_at && text.includes(r.stop_at)) || text.length > 262144) { answered(); res.destroy(); }
      });
      res.on('end', answered);
      res.on('error', failed);
      res.on('close', () => failed('the connection closed before the answer ended'));
    });
    const timer = setTimeout(() => { failed('timed out after ' + r.timeout_ms + ' ms'); req.destroy(); }, r.timeout_ms);
    req.on('error', failed);
    req.end(r.body == null ? undefined : r.body);
  });
}
"""

_STDOUT, _STDERR = 1, 2
# The relay's own answer has a timeout (the request's); this guard only catches a relay that
# died without closing its stream.
_GUARD_SECONDS = 10.0


def _engine_timeout() -> float:
    """The engine's own calls (create and start the exec) wait as long as every Docker call may."""
    return settings.seconds("POWERSYNC_DOCKER_TIMEOUT", 60)


class ChannelClosed(Exception):
    """The relay is gone (its container stopped, or it never started): no answer."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: str = ""
    error: str = ""
    service_ms: float = 0.0


class ExecChannel:
    """One relay process in one container; requests are answered one at a time, in order."""

    def __init__(self, container_id: str, socket_path: Optional[str] = None) -> None:
        self.container_id = container_id
        self._socket_path = socket_path or engine_socket()
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None
        self._buffer = b""  # stream bytes not yet parsed into frames
        self._stdout = b""  # relay output not yet split into answers
        self._stderr = b""

    def request(
        self, method: str, url: str, headers: Mapping[str, str], body: Optional[str], timeout: float, stop_at: str = "",
    ) -> Answer:
        line = json.dumps({"method": method, "url": url, "headers": dict(headers), "body": body,
                           "timeout_ms": int(timeout * 1000), "stop_at": stop_at}) + "\n"
        with self._lock:
            try:
                if self._sock is not None and not self._alive():
                    self._drop()  # the relay ended since the last request (its container restarted)
                if self._sock is None:
                    self._sock = self._start()
                self._sock.settimeout(timeout + _GUARD_SECONDS)
                self._sock.sendall(line.encode())
                reply = self._read_line()
            except (OSError, ChannelClosed) as exc:
                self._drop()
                detail = self._stderr.decode(errors="replace").strip().splitlines()[-1:] or [str(exc) or type(exc).__name__]
                return Answer(status=0, error=f"container unavailable: {detail[0]}")
        try:
            parsed: Any = json.loads(reply)
        except ValueError:
            return Answer(status=0, error="the relay answered something that is not JSON")
        return Answer(status=int(parsed.get("status") or 0), body=parsed.get("body") or "",
                      error=parsed.get("error") or "", service_ms=float(parsed.get("ms") or 0))

    def _alive(self) -> bool:
        """Whether the engine still holds the relay's stream open: when the relay ends, the
        engine closes it, and a read that would otherwise wait finds the end at once."""
        if self._buffer or self._stdout:
            return True
        self._sock.setblocking(False)
        try:
            return self._sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            self._sock.setblocking(True)

    def _start(self) -> socket.socket:
        created = _api(self._socket_path, "POST", f"/containers/{self.container_id}/exec", {
            "AttachStdin": True, "AttachStdout": True, "AttachStderr": True, "Tty": False,
            "Cmd": ["node", "-e", RELAY_SCRIPT],
        })
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(_engine_timeout())
        sock.connect(self._socket_path)
        payload = json.dumps({"Detach": False, "Tty": False}).encode()
        sock.sendall(
            f"POST /exec/{created['Id']}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
            f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ChannelClosed("the engine closed the exec stream")
            head += chunk
        head, _, self._buffer = head.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if status_line.split()[1:2] not in (["101"], ["200"]):
            sock.close()
            raise ChannelClosed(status_line)
        return sock

    def _read_line(self) -> bytes:
        while b"\n" not in self._stdout:
            self._read_frame()
        line, _, self._stdout = self._stdout.partition(b"\n")
        return line

    def _read_frame(self) -> None:
        """Docker multiplexes an attached exec's output (no TTY): an 8-byte header per frame, the
        stream in byte 0 and the length big-endian in bytes 4-7."""
        header = self._take(8)
        stream, size = header[0], struct.unpack(">I", header[4:8])[0]
        data = self._take(size)
        if stream == _STDOUT:
            self._stdout += data
        elif stream == _STDERR:
            self._stderr = (self._stderr + data)[-4096:]

    def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ChannelClosed("the relay ended")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock, self._buffer, self._stdout = None, b"", b""


class ChannelPool:
    """One channel per container, shared by the threads of one command. Nothing closes them: when
    the command's process ends, its sockets close, the engine closes each relay's stdin, and node
    exits."""

    def __init__(self, socket_path: Optional[str] = None) -> None:
        self._socket_path = socket_path
        self._channels: dict[str, ExecChannel] = {}
        self._lock = threading.Lock()

    def get(self, container_id: str) -> ExecChannel:
        with self._lock:
            channel = self._channels.get(container_id)
            if channel is None:
                channel = self._channels[container_id] = ExecChannel(container_id, self._socket_path)
            return channel


def _api(socket_path: str, method: str, path: str, body: dict) -> dict:
    try:
        status, payload = engine_request(method, path, json.dumps(body).encode(), socket_path, _engine_timeout())
    except OSError as exc:
        raise ChannelClosed(f"Docker unreachable: {exc}") from None
    if status >= 300:
        try:
            message = json.loads(payload).get("message", "")
        except ValueError:
            message = payload.decode(errors="replace")
        raise ChannelClosed(message or f"HTTP {status}")
    return json.loads(payload)
