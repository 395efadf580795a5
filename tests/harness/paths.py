"""Where a harness keeps its state, and the environment Dokku gives plugin scripts.

Layout under ``DOKKU_HARNESS_ROOT`` (mirrors a real host):

- ``var/lib/dokku``            DOKKU_LIB_ROOT (root:root 755, as on a real host)
- ``var/lib/dokku/plugins/available|enabled``  plugins (symlinks in enabled/)
- ``var/lib/dokku/core-plugins/available``     PLUGIN_CORE_AVAILABLE_PATH (empty: core
  commands are implemented by the harness itself)
- ``var/lib/dokku/config/<APP>/env.json``      app config (kept apart from the app dir,
  because ``plugn trigger config-set`` on a missing app writes config without creating it)
- ``var/lib/dokku/services/postgres/<SVC>``    dokku-postgres service state
- ``home/dokku``                               DOKKU_ROOT; ``<APP>/`` exists iff the app exists,
  holding ``harness-app.json`` plus Dokku's ``CONTAINER.web.1`` / ``IP.web.1`` / ``PORT.web.1``
- ``calls.jsonl``                              the call log (see calllog.py)
"""
from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

HARNESS_DIR = Path(__file__).resolve().parent
BIN_DIR = HARNESS_DIR / "bin"
DOKKU_USER = "dokku"
NOT_IMPLEMENTED_EXIT = 10
TEST_LABEL = "dokku-powersync-test"
ROOT_LABEL = "dokku-harness.root"


def harness_root() -> Path:
    """The harness root: DOKKU_HARNESS_ROOT, else derived from PLUGIN_PATH/DOKKU_LIB_ROOT
    (plugin scripts may pass a trimmed environment to ``plugn``)."""
    root = os.environ.get("DOKKU_HARNESS_ROOT")
    if root:
        return Path(root)
    lib = os.environ.get("DOKKU_LIB_ROOT")
    if lib:
        return Path(lib).parents[2]
    plugin_path = os.environ.get("PLUGIN_PATH")
    if plugin_path:
        return Path(plugin_path).parents[3]
    raise SystemExit("DOKKU_HARNESS_ROOT is not set")


class Layout:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.lib = self.root / "var/lib/dokku"
        self.plugins = self.lib / "plugins"
        self.available = self.plugins / "available"
        self.enabled = self.plugins / "enabled"
        self.core_plugins = self.lib / "core-plugins"
        self.core_available = self.core_plugins / "available"
        self.config = self.lib / "config"
        self.services = self.lib / "services"
        self.postgres = self.services / "postgres"
        self.data = self.lib / "data"
        self.dokku_root = self.root / "home/dokku"
        self.nginx_confd = self.root / "etc/nginx/conf.d"  # written by nginx:start (Dokku's install)
        self.calls = self.root / "calls.jsonl"
        self.lock = self.root / ".harness.lock"
        self.global_state = self.lib / "config" / "--global.json"

    def app_dir(self, app: str) -> Path:
        return self.dokku_root / app

    def create(self) -> None:
        """Create the tree with real-host ownership: lib root root-owned, data dirs dokku-owned."""
        dokku = pwd.getpwnam(DOKKU_USER)
        for d in (self.root, self.root / "var", self.root / "var/lib", self.lib, self.root / "home",
                  self.root / "etc", self.root / "etc/nginx"):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        for d in (self.plugins, self.available, self.enabled, self.core_plugins, self.core_available,
                  self.config, self.services, self.postgres, self.data, self.data / "storage",
                  self.dokku_root, self.nginx_confd):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
            os.chown(d, dokku.pw_uid, dokku.pw_gid)
        for f in (self.calls, self.lock):
            f.touch()
            os.chmod(f, 0o664)
            os.chown(f, dokku.pw_uid, dokku.pw_gid)


def layout() -> Layout:
    return Layout(harness_root())


def python_bin() -> str:
    return os.environ.get("HARNESS_PYTHON") or sys.executable


def plugin_env(base: dict | None = None, *, quiet: bool | None = None, root: Path | None = None) -> dict:
    """The environment Dokku passes to subcommands and triggers (facts: plugin contract)."""
    lay = Layout(root) if root is not None else layout()
    env = dict(os.environ if base is None else base)
    env.update(
        DOKKU_HARNESS_ROOT=str(lay.root),
        PLUGIN_PATH=str(lay.plugins),
        PLUGIN_AVAILABLE_PATH=str(lay.available),
        PLUGIN_ENABLED_PATH=str(lay.enabled),
        PLUGIN_CORE_PATH=str(lay.core_plugins),
        PLUGIN_CORE_AVAILABLE_PATH=str(lay.core_available),
        DOKKU_LIB_ROOT=str(lay.lib),
        DOKKU_ROOT=str(lay.dokku_root),
        DOKKU_NOT_IMPLEMENTED_EXIT=str(NOT_IMPLEMENTED_EXIT),
        DOKKU_VALID_EXIT="0",
        DOCKER_BIN="docker",
        HARNESS_PYTHON=python_bin(),
    )
    env.setdefault("SSH_USER", pwd.getpwuid(os.getuid()).pw_name)
    # the dokku entry script exports SSH_NAME=${NAME:-default} (the ssh key name when over ssh)
    env.setdefault("SSH_NAME", env.get("NAME") or "default")
    path = env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    parts = [p for p in path.split(":") if p and p != str(BIN_DIR)]
    env["PATH"] = ":".join([str(BIN_DIR)] + parts)
    if quiet is None and env.get("HARNESS_QUIET_WHEN_NO_TTY") and not sys.stdin.isatty():
        # opt-in reading of the contract ("DOKKU_QUIET_OUTPUT=1 with no TTY"); by default the
        # harness follows the transcripts, where the variable never reached plugin scripts
        env["DOKKU_QUIET_OUTPUT"] = "1"
    if quiet is True:
        env["DOKKU_QUIET_OUTPUT"] = "1"
    elif quiet is False:
        env.pop("DOKKU_QUIET_OUTPUT", None)
    return env


def chown_dokku(path: Path) -> None:
    if os.geteuid() != 0:
        return
    dokku = pwd.getpwnam(DOKKU_USER)
    for dirpath, dirnames, filenames in os.walk(path):
        os.lchown(dirpath, dokku.pw_uid, dokku.pw_gid)
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), dokku.pw_uid, dokku.pw_gid)
