"""pytest-friendly construction of a harness.

    h = make_harness()                      # a fresh root under /tmp (dokku must reach it)
    h.install_plugin()                      # working tree -> temp git repo -> plugin:install
    r = h.run("apps:create", "tps")         # CompletedProcess (text), as root -> re-exec to dokku
    r = h.run("postgres:connect", "db", input="SELECT 1;")
    h.run_as_dokku("powersync:info", "x")   # run as the dokku user from the start
    h.plugn("trigger", "config-get", "tps", "KEY")
    h.calls(); h.deploys("tps"); h.restarts("tps"); h.triggers("post-config-update")
    h.cleanup()                             # containers, volumes, images, networks, root

``h.env`` is the environment for your own subprocesses (``PATH`` with the harness ``bin`` first,
``DOKKU_HARNESS_ROOT``, ``DOKKU_DEFAULT_CHECKS_WAIT`` and ``DOKKU_WAIT_TO_RETIRE`` shortened for
speed unless you pass ``fast=False``). Docker container names are global (``APP.web.1``,
``dokku.postgres.SVC``): use ``h.unique("tps")`` names when suites may run concurrently.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.secrets_in_output import learn_from_command

from .api import Harness
from .paths import BIN_DIR, ROOT_LABEL, Layout

REPO_ROOT = BIN_DIR.parents[2]


def default_python() -> str:
    return os.environ.get("HARNESS_PYTHON") or str(REPO_ROOT / ".venv/bin/python")


class HarnessFixture(Harness):
    def __init__(self, root: Path, *, fast: bool = True):
        super().__init__(root)
        self.layout = Layout(root)
        self.layout.create()
        env = dict(os.environ)
        env.pop("DOKKU_QUIET_OUTPUT", None)
        for key in ("PLUGIN_PATH", "DOKKU_LIB_ROOT", "DOKKU_ROOT", "PLUGIN_ENABLED_PATH",
                    "PLUGIN_AVAILABLE_PATH", "PLUGIN_CORE_AVAILABLE_PATH"):
            env.pop(key, None)
        env["DOKKU_HARNESS_ROOT"] = str(root)
        env["HARNESS_PYTHON"] = default_python()
        env["PATH"] = f"{BIN_DIR}:{env.get('PATH', '/usr/local/bin:/usr/bin:/bin')}"
        if fast:
            env.setdefault("DOKKU_DEFAULT_CHECKS_WAIT", "2")
            env.setdefault("DOKKU_WAIT_TO_RETIRE", "5")
        self.env = env

    def unique(self, name: str) -> str:
        return f"{name}-{uuid.uuid4().hex[:6]}"

    def run(self, *args, input: str | None = None, env: dict | None = None, timeout: float = 600,
            user: str | None = None) -> subprocess.CompletedProcess:
        cmd = [str(BIN_DIR / "dokku"), *args]
        if user:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *cmd]
        result = subprocess.run(cmd, input=input if input is not None else "", capture_output=True, text=True,
                                env={**self.env, **(env or {})}, timeout=timeout,
                                cwd=str(self.layout.dokku_root) if user else None)
        learn_from_command(args, input, result.stdout)
        return result

    def run_as_dokku(self, *args, **kw) -> subprocess.CompletedProcess:
        return self.run(*args, user="dokku", **kw)

    def run_over_ssh(self, key_name: str, *args, input: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        """`ssh dokku@host ARGS` with the key sshcommand knows as ``key_name``: its forced command
        runs `dokku` as the dokku user with NAME=<key name> and the login's USER=dokku (no SSH_USER)."""
        env = {k: v for k, v in self.env.items() if k not in ("SSH_USER", "SSH_NAME", "SUDO_USER", "SUDO_UID", "SUDO_GID")}
        env.update(USER="dokku", LOGNAME="dokku", NAME=key_name, HOME=str(self.layout.dokku_root))
        cmd = ["setpriv", "--reuid=dokku", "--regid=dokku", "--init-groups", str(BIN_DIR / "dokku"), *args]
        result = subprocess.run(cmd, input=input if input is not None else "", capture_output=True, text=True,
                                env=env, timeout=timeout, cwd=str(self.layout.dokku_root))
        learn_from_command(args, input, result.stdout)
        return result

    def install_acl_model(self, **settings: str) -> subprocess.CompletedProcess:
        """dokku-acl's model (``dokku_acl/``, see README) through ``plugin:install``, configured
        the way its README says, in ``~dokku/.dokkurc/acl``: ``DOKKU_SUPER_USER="admin"`` etc."""
        rc_dir = self.layout.dokku_root / ".dokkurc"
        rc_dir.mkdir(exist_ok=True)
        os.chmod(rc_dir, 0o755)
        lines = [f"export {key}={shlex.quote(value)}" for key, value in settings.items()]
        (rc_dir / "acl").write_text("".join(line + "\n" for line in lines))
        os.chmod(rc_dir / "acl", 0o644)
        return self.install_plugin(source=BIN_DIR.parent / "dokku_acl", name="acl")

    def plugn(self, *args, user: str = "dokku", input: str | None = None, env: dict | None = None):
        from .paths import plugin_env
        base = {**self.env, **(env or {})}
        penv = plugin_env(base, root=self.root)
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", str(BIN_DIR / "plugn"), *args]
        return subprocess.run(cmd, input=input if input is not None else "", capture_output=True, text=True,
                              env=penv, cwd=str(self.layout.dokku_root))

    def install_plugin(self, source: Path = REPO_ROOT, name: str = "powersync") -> subprocess.CompletedProcess:
        repo = snapshot_repo(Path(source), self.root / ("plugin-src" if name == "powersync" else f"plugin-src-{name}"))
        return self.run("plugin:install", f"file://{repo}", "--name", name)

    def update_plugin(self, source: Path = REPO_ROOT, name: str = "powersync") -> subprocess.CompletedProcess:
        """Commit the current working tree to the repo ``install_plugin`` made, then
        ``plugin:update NAME`` (git pull + every plugin's ``update`` trigger)."""
        snapshot_repo(Path(source), self.root / "plugin-src")
        return self.run("plugin:update", name)

    def cleanup(self) -> None:
        label = f"label={ROOT_LABEL}={self.root}"
        def ids(*cmd):
            return subprocess.run(["docker", *cmd], capture_output=True, text=True).stdout.split()
        containers = ids("ps", "-aq", "--filter", label)
        if containers:
            subprocess.run(["docker", "rm", "-f", *containers], capture_output=True)
        for kind in ("volume", "network"):
            found = ids(kind, "ls", "-q", "--filter", label)
            if found:
                subprocess.run(["docker", kind, "rm", "-f" if kind == "volume" else "", *found] if kind == "volume"
                               else ["docker", kind, "rm", *found], capture_output=True)
        images = ids("images", "-q", "--filter", label)
        if images:
            subprocess.run(["docker", "rmi", "-f", *sorted(set(images))], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def snapshot_repo(source: Path, dest: Path) -> Path:
    """Copy the non-ignored files of ``source`` into a fresh git repo at ``dest`` and commit them
    (real ``plugin:install file://`` clones the committed HEAD only)."""
    listed = subprocess.run(["git", "-C", str(source), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    git = ["git", "-C", str(dest), "-c", "user.name=harness", "-c", "user.email=harness@localhost",
           "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
    if (dest / ".git").is_dir():  # a new commit on the same repo, for plugin:update
        subprocess.run([*git, "rm", "-rq", "--ignore-unmatch", "."], check=True)
    dest.mkdir(parents=True, exist_ok=True)
    for rel in filter(None, listed.decode().split("\0")):
        src = source / rel
        if not src.exists() or src.is_dir():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    if not (dest / ".git").is_dir():
        subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "snapshot"], check=True)
    os.chmod(dest, 0o755)
    return dest


def make_harness(tmp_path=None, *, fast: bool = True, proxy: bool = False) -> HarnessFixture:
    """A fresh harness. ``tmp_path`` is accepted for symmetry but the root is created under /tmp
    with mode 755: pytest's tmp_path lives in a root-only directory the dokku user cannot enter.
    ``proxy=True``: a host with Dokku's nginx proxy running (``nginx:start``; see nginx.py),
    reached with ``h.proxy_request`` / ``h.proxy_url``."""
    root = Path(tempfile.mkdtemp(prefix="dokku-harness-"))
    os.chmod(root, 0o755)
    h = HarnessFixture(root, fast=fast)
    if proxy:
        started = h.run("nginx:start")
        if started.returncode != 0:
            h.cleanup()
            raise RuntimeError(f"nginx:start failed: {started.stdout}{started.stderr}")
    return h


def self_signed_cert(h: Harness, *domains: str) -> tuple[Path, Path]:
    """A self-signed certificate and key for ``domains`` (first one the CN), made with ``openssl``
    in a directory the dokku user can read, for ``certs:add APP CRT KEY`` (or a tarball of both)."""
    directory = Path(tempfile.mkdtemp(prefix="certs-", dir=h.root))
    os.chmod(directory, 0o755)
    crt, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "30", "-subj", f"/CN={domains[0]}", "-addext",
         "subjectAltName=" + ",".join(f"DNS:{d}" for d in domains), "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True)
    for path in (crt, key):
        os.chmod(path, 0o644)
    return crt, key
