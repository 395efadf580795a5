"""A container's state from one request to the Docker engine's API socket, with the standard
library only, for the read commands (`info`): the engine adapter (docker_engine.py, the place for
every other Docker call) loads the SDK on use and dataclasses, tarfile and hashlib on import, which
would double the time of a read that needs one answer."""
from __future__ import annotations

import json
import os
from typing import Optional

DOCKER_SOCKET = "/var/run/docker.sock"


def engine_socket() -> str:
    """The engine's socket as the SDK's docker.from_env() finds it: DOCKER_HOST when it names a
    unix socket, else Docker's default."""
    host = os.environ.get("DOCKER_HOST", "")
    return host[len("unix://"):] if host.startswith("unix://") else DOCKER_SOCKET


def quick_container_status(container_name: str, socket_path: Optional[str] = None) -> str:
    """`running`, `stopped` or `missing`, from one Docker API call without importing the SDK
    (read commands must stay fast)."""
    import http.client
    import socket

    socket_path = socket_path or engine_socket()

    class _UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(5)
            self.sock.connect(socket_path)

    connection = _UnixConnection("localhost")
    try:
        connection.request("GET", f"/containers/{container_name}/json")
        response = connection.getresponse()
        body = response.read()
    except OSError:
        return "unknown (Docker unreachable)"
    finally:
        connection.close()
    if response.status == 404:
        return "missing"
    try:
        running = json.loads(body)["State"]["Running"]
    except (ValueError, KeyError):
        return "unknown"
    return "running" if running else "stopped"
