"""The `dokku` script's first step as root: every command except `plugin:*` re-runs itself as the
dokku user (`sudo -u dokku -E -H`). entry.py does it before importing anything else, as the bash
script does before any work, so a root call does not pay for the harness's imports twice.
"""
from __future__ import annotations

import os
import pwd
import sys

from .paths import DOKKU_USER, layout, python_bin


def command_of(argv: list[str]) -> str:
    """The subcommand after the global flags (`--quiet`, `--trace`, `--force`; `--help` is help)."""
    for word in argv:
        if word in ("--help", "-h"):
            return "help"
        if not word.startswith("--"):
            return word
    return "help"


def needs_reexec(argv: list[str]) -> bool:
    return os.geteuid() == 0 and not command_of(argv).startswith("plugin")


def reexec_as_dokku(argv: list[str]) -> None:
    env = dict(os.environ)
    env["HOME"] = str(layout().dokku_root)
    env["HARNESS_INVOKED_UID"] = str(os.getuid())
    # The dokku script: `export SSH_USER=$(id -un)`, then `sudo -u dokku -E -H "$0" "$@"`; sudo
    # sets SUDO_USER/SUDO_UID/SUDO_GID to the user who invoked it, -E keeps the rest.
    invoker = pwd.getpwuid(os.getuid())
    env["SSH_USER"] = invoker.pw_name
    env.update(SUDO_USER=invoker.pw_name, SUDO_UID=str(invoker.pw_uid), SUDO_GID=str(invoker.pw_gid))
    entry = os.path.join(os.path.dirname(os.path.abspath(__file__)), "entry.py")
    sys.stdout.flush()
    os.execvpe("setpriv", ["setpriv", f"--reuid={DOKKU_USER}", f"--regid={DOKKU_USER}", "--init-groups",
                           python_bin(), entry, "dokku", *argv], env)
