"""Requests to the Docker engine's API socket with the standard library only: a container's
state for the read commands (`info`), and the inspects and listings every command makes. The
Docker SDK (and the requests library under it) takes about 0.2 s to import and connect, more than
the answers themselves; the engine adapter (docker_engine.py) loads it only for the calls that
need it (builds, pulls, one-off containers)."""
from __future__ import annotations

import json
import os
import socket
from typing import Any, Optional

DOCKER_SOCKET = "/var/run/docker.sock"


def engine_socket() -> str:
    """The engine's socket as the SDK's docker.from_env() finds it: DOCKER_HOST when it names a
    unix socket, else Docker's default."""
    host = os.environ.get("DOCKER_HOST", "")
    return host[len("unix://"):] if host.startswith("unix://") else DOCKER_SOCKET


def engine_request(method: str, path: str, body: Optional[bytes] = None, socket_path: Optional[str] = None,
                   timeout: float = 5) -> tuple[int, bytes]:
    """One request to the engine's API over its unix socket: (HTTP status, body bytes). HTTP/1.0,
    so the engine closes the connection after the answer and never chunks it: the whole exchange
    is a write and a read to the end, with no HTTP library (http.client and the email parser it
    loads cost about 15 ms of a read command's start). Raises OSError when the engine does not
    answer (socket.timeout when it answers too late) or answers something that is not HTTP."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(socket_path or engine_socket())
        head = f"{method} {path} HTTP/1.0\r\nHost: docker\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        sock.sendall((head + "\r\n").encode() + (body or b""))
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    answer = b"".join(chunks)
    status_line, _, rest = answer.partition(b"\r\n")
    headers, separator, payload = rest.partition(b"\r\n\r\n")
    words = status_line.split()
    if not separator or len(words) < 2 or not words[0].startswith(b"HTTP/") or not words[1].isdigit():
        raise OSError(f"the engine's answer to {method} {path.split('?', 1)[0]} is not HTTP")
    return int(words[1]), payload


def engine_get(path: str, socket_path: Optional[str] = None, timeout: float = 5) -> tuple[int, Any]:
    """One GET to the engine's API: (HTTP status, decoded JSON or None)."""
    status, payload = engine_request("GET", path, socket_path=socket_path, timeout=timeout)
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, None


def quick_container_status(container_name: str, socket_path: Optional[str] = None) -> str:
    """`running`, `stopped` or `missing`, from one Docker API call without importing the SDK
    (read commands must stay fast)."""
    try:
        status, found = engine_get(f"/containers/{container_name}/json", socket_path)
    except OSError:
        return "unknown (Docker unreachable)"
    if status == 404:
        return "missing"
    try:
        running = found["State"]["Running"]
    except (TypeError, KeyError):
        return "unknown"
    return "running" if running else "stopped"
