"""Dokku's output vocabulary: `-----> ` steps, `=====> ` headers, 7-space details, ` !     ` errors."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from powersync_plugin.redact import Redactor


@dataclass
class Output:
    redactor: Redactor = field(default_factory=Redactor)
    quiet: bool = False  # --format json: stdout carries nothing but the JSON document
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    def _emit(self, stream: TextIO, text: str) -> None:
        stream.write(self.redactor.text(text) + "\n")
        stream.flush()

    def step(self, text: str) -> None:
        self._emit(self.stderr if self.quiet else self.stdout, f"-----> {text}")

    def header(self, text: str) -> None:
        self._emit(self.stderr if self.quiet else self.stdout, f"=====> {text}")

    def detail(self, text: str) -> None:
        self._emit(self.stderr if self.quiet else self.stdout, f"       {text}")

    def warn(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self._emit(self.stderr, f" !     {line}")

    def raw(self, text: str) -> None:
        self._emit(self.stdout, text)
