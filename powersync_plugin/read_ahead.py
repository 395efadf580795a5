"""Dokku reads a change needs, started together once it holds the instance's lock.

A restarting change (rotate, upgrade) used to read one thing after another before its deploy: the
scheduler, the backend's and the instance's config, the source service's DSN, the ports map, the
certificate, the deployed image, the docker options. Each is a `dokku` process, and they do not
depend on each other, so they run at once (subprocesses release the interpreter lock). The step
that needs an answer takes it; the same answer serves every step until `forget()`, which the
publish calls once it has observed the app (it writes next: a restore after a failure must read
afresh) and the change pipeline calls when the change ends.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Optional

Read = tuple  # (name of a Dokku adapter method, *its arguments)
WORKERS = 8  # more than any change starts: every read starts at once


class ReadAhead:
    def __init__(self, dokku: Any):
        self._dokku = dokku
        self._pool: Optional[ThreadPoolExecutor] = None
        self._answers: dict[Read, Future] = {}

    def start(self, *reads: Read) -> None:
        """Start the reads not started yet, each in a thread of its own."""
        for read in reads:
            if read in self._answers:
                continue
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="read-ahead")
            self._answers[read] = self._pool.submit(getattr(self._dokku, read[0]), *read[1:])

    def take(self, method: str, *args: Any) -> Any:
        """The answer of the read started for `method(*args)` (its error, if it failed), or a read
        made now when none was started."""
        future = self._answers.get((method, *args))
        if future is None:
            return getattr(self._dokku, method)(*args)
        return future.result()

    def forget(self) -> None:
        """Drop every answer: later takes read afresh. Reads still running finish unheeded."""
        self._answers.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
