"""A logging proxy in front of the Docker engine's API socket, for tests.

    with DockerProxy(h.root) as proxy:                 # listens on <root>/docker-proxy.sock
        h.run("powersync:reconcile", name, "--dry-run", env=proxy.env)   # DOCKER_HOST=unix://...
        proxy.requests()    # [{"method", "path", "client", "uid", "exec"?}, ...] in order

Everything that honours ``DOCKER_HOST`` goes through it: the plugin's Docker SDK
(``docker.from_env()``) and the ``docker`` CLI the harness runs for Dokku's own work (deploys,
``postgres:connect``'s ``docker exec -i``, ``logs -f``). Each request is recorded with its method
and path (query string kept), the peer process's name (``client``: ``docker`` for the CLI, the
interpreter's name for the plugin, from SO_PEERCRED + /proc/PID/comm) and uid; for
``POST /containers/{id}/exec`` also ``exec``, the program the exec runs (``Cmd[0]`` only: the
rest may carry tokens). Bodies are never logged.

The proxy is a byte relay, so streams keep working: chunked and long-lived responses (``logs
-f``, ``events``) are piped as they come, and a request with ``Upgrade:`` (exec/attach hijack,
``docker exec -i`` with stdin) turns its connection into a raw two-way pipe after the request,
with half-closes (the CLI's CloseWrite at stdin EOF) passed on. Only the client's direction is
parsed (request heads, Content-Length and chunked bodies), to find where each request starts.
Modelled on the Engine API's HTTP/1.1 over a unix socket (docs.docker.com/engine/api, "hijacking").

The socket is owned by the ``dokku`` user (mode 0660): the harness runs plugin commands as dokku.
"""
from __future__ import annotations

import json
import os
import pwd
import socket
import struct
import threading
from pathlib import Path

UPSTREAM = "/var/run/docker.sock"
_MAX_EXEC_BODY = 1 << 20


class DockerProxy:
    def __init__(self, root, upstream: str = UPSTREAM, owner: str = "dokku"):
        self.root = Path(root)
        self.path = self.root / "docker-proxy.sock"
        self.log_path = self.root / "docker-calls.jsonl"
        self.upstream = upstream
        self.owner = owner
        self._lock = threading.Lock()
        self._records: list[dict] = []
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = False

    # --- public --------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    @property
    def env(self) -> dict:
        return {"DOCKER_HOST": self.host}

    def requests(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._records]

    def mark(self) -> int:
        """A position in the request list: ``requests()[mark:]`` is what came after."""
        with self._lock:
            return len(self._records)

    def start(self) -> "DockerProxy":
        if self.path.exists():
            self.path.unlink()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.path))
        if os.geteuid() == 0:
            user = pwd.getpwnam(self.owner)
            os.chown(self.path, user.pw_uid, user.pw_gid)
        os.chmod(self.path, 0o660)
        server.listen(64)
        self._server = server
        self._thread = threading.Thread(target=self._accept_loop, name="docker-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing = True
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.path.exists():
            self.path.unlink()

    def __enter__(self) -> "DockerProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- serving -------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        peer = _peer(client)
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.upstream)
        except OSError:
            client.close()
            upstream.close()
            return
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        parser = _RequestParser(lambda record: self._note({**record, **peer}))
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                parser.feed(data)
                upstream.sendall(data)
        except OSError:
            pass
        _half_close(upstream)
        back.join()
        client.close()
        upstream.close()

    def _note(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with self._lock:
            self._records.append(record)
            with open(self.log_path, "a") as fh:
                fh.write(line)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    _half_close(sink)


def _half_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _peer(sock: socket.socket) -> dict:
    try:
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return {"client": "?", "uid": -1}
    return {"client": comm, "uid": uid}


class _RequestParser:
    """Finds request heads in the client->engine byte stream (HTTP/1.1, keep-alive)."""

    def __init__(self, emit):
        self.emit = emit
        self.buffer = b""
        self.state = "head"  # head | body | chunk-size | chunk-data | chunk-crlf | trailer | raw
        self.remaining = 0
        self.pending: dict | None = None  # a record waiting for its body (exec create)
        self.body = b""
        self.upgrade = False

    def feed(self, data: bytes) -> None:
        if self.state == "raw":
            return
        self.buffer += data
        while self.buffer and self.state != "raw":
            if not self._step():
                return

    def _step(self) -> bool:
        """Consume what the buffer allows in the current state; False when more bytes are needed."""
        if self.state == "head":
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4 :]
            self._begin(head)
            return True
        if self.state == "body":
            take = min(self.remaining, len(self.buffer))
            self._body(self.buffer[:take])
            self.buffer, self.remaining = self.buffer[take:], self.remaining - take
            if self.remaining == 0:
                self._end()
            return True
        if self.state in ("chunk-size", "trailer", "chunk-crlf"):
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return False
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            if self.state == "chunk-crlf":
                self.state = "chunk-size"
            elif self.state == "trailer":
                if not line:
                    self._end()
            else:
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.state = "trailer"
                else:
                    self.state, self.remaining = "chunk-data", size
            return True
        if self.state == "chunk-data":
            take = min(self.remaining, len(self.buffer))
            self._body(self.buffer[:take])
            self.buffer, self.remaining = self.buffer[take:], self.remaining - take
            if self.remaining == 0:
                self.state = "chunk-crlf"
            return True
        return False

    def _begin(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        method, path = (parts[0], parts[1]) if len(parts) >= 2 else (lines[0], "")
        record = {"method": method, "path": path}
        self.upgrade = "upgrade" in headers
        self.body = b""
        wants_body = method == "POST" and path.split("?", 1)[0].endswith("/exec") and "/containers/" in path
        self.pending = record if wants_body else None
        if not wants_body:
            self.emit(record)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.state = "chunk-size"
        elif int(headers.get("content-length", "0") or 0) > 0:
            self.state, self.remaining = "body", int(headers["content-length"])
        else:
            self._end()

    def _body(self, data: bytes) -> None:
        if self.pending is not None and len(self.body) < _MAX_EXEC_BODY:
            self.body += data

    def _end(self) -> None:
        if self.pending is not None:
            try:
                cmd = json.loads(self.body or b"{}").get("Cmd") or []
                self.pending["exec"] = os.path.basename(str(cmd[0])) if cmd else ""
            except (ValueError, AttributeError):
                self.pending["exec"] = "?"
            self.emit(self.pending)
            self.pending = None
        self.state = "raw" if self.upgrade else "head"
