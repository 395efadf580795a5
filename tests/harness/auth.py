"""Who runs a command, and whether they may: the `dokku` script's dokkurc and `dokku_auth`.

Modelled on dokku/dokku v0.38.27 `dokku` (the entry script) and `plugins/common/functions`
(`dokku_auth`), read from the upstream sources:

- Every `dokku` run first sources `$DOKKU_ROOT/dokkurc` and each file of `$DOKKU_ROOT/.dokkurc/`,
  so what they export (dokku-acl's `DOKKU_ACL_*`, `DOKKU_SUPER_USER`) reaches every plugin. The
  harness reads `export KEY=VALUE` / `KEY=VALUE` lines (shell quoting, `#` comments); other shell
  is not evaluated.
- As root, a command other than `plugin:*` re-execs as dokku with `SSH_USER=$(id -un)` (cli.py);
  `plugin:*` run as root export `SSH_USER=root`.
- Then, for every command (nested calls a plugin makes included: they inherit the environment),
  `dokku_auth "$@"` exports `SSH_USER=${SSH_USER:=$USER}`, `SSH_NAME=${NAME:="default"}` (NAME is
  the key's name that sshcommand's forced command sets; unset on the host), `DOKKU_COMMAND=$1`,
  and when an enabled plugin other than the core `20_events` has a `user-auth` trigger, runs
  `plugn trigger user-auth "$SSH_USER" "$SSH_NAME" "$@"` (the arguments after the global flags).
  A non-zero exit ends the command with ` !     Access denied` on stderr, exit 1.

Not modelled: `user-auth-app` (Dokku's Go app listing and `VerifyAppName` filter apps through
it); no harness command consults it.
"""
from __future__ import annotations

import os
import shlex

from . import triggers
from .output import fail
from .paths import layout


def source_dokkurc() -> None:
    root = layout().dokku_root
    files = [root / "dokkurc"]
    if (root / ".dokkurc").is_dir():
        files += sorted((root / ".dokkurc").iterdir())
    for path in files:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "export":
                words = words[1:]
            for word in words:
                key, sep, value = word.partition("=")
                if sep and key.isidentifier():
                    os.environ[key] = value


def dokku_auth(args: list[str]) -> None:
    """Refuse the command (exit 1) when a `user-auth` trigger says no."""
    os.environ["SSH_USER"] = os.environ.get("SSH_USER") or os.environ.get("USER", "")
    os.environ["SSH_NAME"] = os.environ.get("NAME") or "default"
    os.environ["DOKKU_COMMAND"] = args[0] if args else ""
    providers = [plugin for plugin in triggers.enabled_plugins() if triggers.plugin_script(plugin, "user-auth")]
    if not providers or providers == ["20_events"]:
        return
    if triggers.fire("user-auth", [os.environ["SSH_USER"], os.environ["SSH_NAME"], *args]) != 0:
        fail("Access denied")
