"""Import the write path's heavy packages while a command waits on Dokku.

The Docker SDK and SQLAlchemy take about 0.3 s to import. `link` first spends a second or more in
read-only Dokku calls (subprocesses, which release the interpreter lock), so a background thread
can import them meanwhile. The caller must `wait()` before it touches either package itself:
importing one package from two threads at once can hand either thread a half-initialised module.
"""
from __future__ import annotations

import importlib
import threading

JOURNAL_WRITER = ("sqlalchemy", "powersync_plugin.adapters.journal_schema")
WRITE_PATH = ("docker", *JOURNAL_WRITER)


class Preload:
    def __init__(self, modules: tuple[str, ...] = WRITE_PATH):
        self._thread = threading.Thread(target=self._load, args=(modules,), name="preload", daemon=True)
        self._thread.start()

    @staticmethod
    def _load(modules: tuple[str, ...]) -> None:
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception:  # the caller's own import raises it again, with context
                return

    def wait(self) -> None:
        self._thread.join()
