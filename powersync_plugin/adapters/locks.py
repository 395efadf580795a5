"""One writer per instance: an advisory file lock, announced while waiting."""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from powersync_plugin.core.errors import DomainError


class Busy(DomainError):
    pass


@contextlib.contextmanager
def instance_lock(directory: Path, name: str, announce: Callable[[str], None], timeout: float) -> Iterator[None]:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / f"{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            announce(f"Waiting for another powersync command on {name} to finish (up to {int(timeout)}s)")
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise Busy(f"{name} is busy: another powersync command holds its lock; retry when it finishes") from None
                    time.sleep(0.2)
        yield
    finally:
        os.close(fd)
