"""Wiring: the one place that builds what a command runs with (output, redactor, Dokku, Docker,
journal, source database) and hands the change pipeline its reconciler.

Built lazily: read commands never import Docker or open more than the journal.
"""
from __future__ import annotations

import os
import pwd
import sys
from typing import Optional

from powersync_plugin.output import Output
from powersync_plugin.redact import Redactor


class Context:
    current: Optional["Context"] = None

    def __init__(self, json_output: bool = False):
        self.redactor = Redactor()
        self.out = Output(redactor=self.redactor, quiet=json_output)
        self.services = None
        Context.current = self  # errors raised later are redacted with what this command learned

    def build(self):
        """The Services of a command that talks to Dokku and Docker (the write path)."""
        from powersync_plugin.adapters.docker_engine import DockerEngine
        from powersync_plugin.adapters.dokku import Dokku
        from powersync_plugin.reconcile import reconcile_locked
        from powersync_plugin.services import Services

        self.services = Services(
            self.out, Dokku(self.redactor), DockerEngine(), actor(), self.redactor.command_line(command_argv()),
            reconciler=reconcile_locked,
        )
        return self.services


def current_redactor() -> Redactor:
    return Context.current.redactor if Context.current else Redactor()


def actor() -> str:
    """Who ran the command, for history. Over SSH, Dokku's SSH_NAME is the key's name; on the host
    it is always `default`, so the person is the login user (the audit loginuid survives sudo and
    Dokku's re-exec as dokku), else the user Dokku re-executed for (SSH_USER, `id -un` before it)."""
    name = os.environ.get("SSH_NAME", "")
    if name and name != "default":
        return name
    return _login_user() or os.environ.get("SSH_USER") or os.environ.get("SUDO_USER") or pwd.getpwuid(os.geteuid()).pw_name


def _login_user() -> Optional[str]:
    try:
        with open("/proc/self/loginuid") as handle:
            uid = int(handle.read().strip())
        user = pwd.getpwuid(uid).pw_name
    except (OSError, ValueError, KeyError):
        return None
    # 4294967295: no login session (a service, a container); dokku: an SSH login without a key name.
    return None if uid == 4294967295 or user == "dokku" else user


def command_argv() -> list[str]:
    return ["dokku", *sys.argv[1:]]
