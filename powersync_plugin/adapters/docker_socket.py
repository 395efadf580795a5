"""Requests to the Docker engine's API socket with the standard library only: a container's
state for the read commands (`info`), and the inspects and listings every command makes. The
Docker SDK (and the requests library under it) takes about 0.2 s to import and connect, more than
the answers themselves; the engine adapter (docker_engine.py) loads it only for the calls that
need it (builds, pulls, one-off containers)."""
from __future__ import annotations

import http.client
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


class UnixConnection(http.client.HTTPConnection):
    """An HTTP connection to the engine's unix socket."""

    def __init__(self, socket_path: str, timeout: float = 5) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def engine_get(path: str, socket_path: Optional[str] = None, timeout: float = 5) -> tuple[int, Any]:
    """One GET to the engine's API: (HTTP status, decoded JSON or None). Raises OSError when the
    engine does not answer (socket.timeout when it answers too late)."""
    connection = UnixConnection(socket_path or engine_socket(), timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    except http.client.HTTPException as exc:
        raise OSError(f"the engine's answer to GET {path} is not HTTP: {exc}") from None
    finally:
        connection.close()
    try:
        return response.status, json.loads(body)
    except ValueError:
        return response.status, None


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
