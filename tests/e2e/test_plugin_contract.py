"""Issue 3's plugin contract on the harness: install trigger, help, dispatch, foreign commands."""
import fcntl
import os
import stat
import subprocess
from pathlib import Path

from tests.harness.fixture import make_harness


def test_help_through_dokku(harness):
    h = harness
    usage = h.run("powersync:help")
    assert usage.returncode == 0 and "powersync:set-rules <name> [flags]" in usage.stdout
    one = h.run("powersync:help", "link")
    assert one.returncode == 0 and "--no-restart" in one.stdout and "Usage: dokku powersync:link" in one.stdout
    listing = h.run("help")
    assert "powersync:create <name> [flags]" in listing.stdout


def test_foreign_commands_exit_10_from_commands(harness):
    plugin = Path(harness.root) / "var/lib/dokku/plugins/enabled/powersync"
    result = subprocess.run([str(plugin / "commands"), "apps:list"], capture_output=True, text=True, env=harness.env)
    assert result.returncode == 10


def test_install_built_the_venv_and_data_root_for_dokku(harness):
    envs = Path(harness.root) / "var/lib/dokku/data/powersync"
    venv = envs / "venv"
    assert venv.is_symlink() and os.readlink(venv).startswith("venvs/")
    assert (venv / "bin/python").exists()
    data_root = Path(harness.root) / "var/lib/dokku/services/powersync"
    info = os.stat(data_root)
    assert stat.S_IMODE(info.st_mode) == 0o700
    import pwd

    assert pwd.getpwuid(info.st_uid).pw_name == "dokku"
    journal = os.stat(data_root / "journal.sqlite3")
    assert stat.S_IMODE(journal.st_mode) == 0o600 and pwd.getpwuid(journal.st_uid).pw_name == "dokku"


def test_install_precompiles_the_plugin_for_the_environments_python(harness):
    """Commands run as dokku with PYTHONDONTWRITEBYTECODE (hooks/_launch): without a .pyc made by
    install, every command compiled each plugin module it imports from source (README: Performance)."""
    plugin = Path(harness.root) / "var/lib/dokku/plugins/available/powersync/powersync_plugin"
    python = Path(harness.root) / "var/lib/dokku/data/powersync/venv/bin/python"
    script = (
        "import importlib.util, pathlib, sys\nroot = pathlib.Path(sys.argv[1])\n"
        "print(sorted(str(p.relative_to(root)) for p in root.rglob('*.py')"
        " if not pathlib.Path(importlib.util.cache_from_source(str(p))).is_file()))"
    )
    result = subprocess.run([str(python), "-c", script, str(plugin)], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "[]\n"), result.stderr
    assert (plugin / "read_commands.py").is_file()


def test_install_again_is_idempotent_and_fast(harness):
    import time

    venv = Path(harness.root) / "var/lib/dokku/data/powersync/venv"
    before = os.readlink(venv)
    started = time.monotonic()
    result = subprocess.run(["dokku", "plugin:install"], capture_output=True, text=True, env=harness.env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.readlink(venv) == before
    assert "Building the dokku-powersync Python environment" not in result.stdout
    assert time.monotonic() - started < 60


def test_install_keeps_dokku_help_working_and_uninstall_removes_the_environment(images):
    """Real host: the venv lived inside the plugin dir, and Dokku's `help` runs every
    `find -L plugins/enabled -name commands` match, pip's `_internal/commands` directory
    included: plugin:install and every later `dokku help` exited 126. A fresh host here,
    because it ends with plugin:uninstall."""
    h = make_harness()
    try:
        installed = h.install_plugin()
        assert installed.returncode == 0, installed.stdout + installed.stderr
        for args in (("help",), ("help", "--all")):
            listing = h.run(*args)
            assert listing.returncode == 0, listing.stderr
            assert "powersync:create <name> [flags]" in listing.stdout
        plugin = h.root / "var/lib/dokku/plugins/enabled/powersync"
        scan = subprocess.run(["find", "-L", str(plugin), "-name", "commands"], capture_output=True, text=True)
        assert scan.stdout.split() == [str(plugin / "commands")]  # what Dokku's help executes
        env_root = h.root / "var/lib/dokku/data/powersync"
        assert (env_root / "venv/bin/python").exists()
        assert h.run("powersync:list").returncode == 0
        (env_root / "venv").rename(env_root / "venv.away")  # an install that never completed
        missing = h.run("powersync:list")
        assert missing.returncode == 1 and "dokku-powersync has no Python environment in" in missing.stderr
        assert "Run `dokku plugin:install` as root" in missing.stderr
        still = h.run("help")  # every user's `dokku help` keeps working
        assert still.returncode == 0 and "powersync:help" in still.stdout, still.stderr
        (env_root / "venv.away").rename(env_root / "venv")
        removed = h.run("plugin:uninstall", "powersync")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert not (env_root / "venv").exists() and not (env_root / "venvs").exists()
        assert h.run("help").returncode == 0
    finally:
        h.cleanup()


def test_update_recovers_a_host_broken_by_the_in_plugin_venv(harness):
    """Earlier versions left .venvs/<stamp> (with pip/_internal/commands) in the plugin dir:
    plugin:update removes it, and `dokku help` works again."""
    h = harness
    old = h.root / "var/lib/dokku/plugins/available/powersync/.venvs/0123-py3/lib/site-packages/pip/_internal/commands"
    old.mkdir(parents=True)
    assert h.run("help").returncode == 126
    updated = h.update_plugin()
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert not old.parents[4].exists()
    assert h.run("help").returncode == 0


def test_install_removes_old_environments_only_when_no_command_runs(harness):
    h = harness
    envs = h.root / "var/lib/dokku/data/powersync/venvs"
    stale = envs / "0000000000000000-py3.0.0"
    (stale / "bin").mkdir(parents=True)
    # a running command holds venvs.lock shared (hooks/_env): the stale environment stays
    holder = open(envs.parent / "venvs.lock")
    try:
        fcntl.flock(holder, fcntl.LOCK_SH)
        busy = subprocess.run(["dokku", "plugin:install"], capture_output=True, text=True, env=h.env)
        assert busy.returncode == 0, busy.stdout + busy.stderr
        assert stale.exists() and "older Python environments are removed at the next" in busy.stdout
    finally:
        holder.close()
    idle = subprocess.run(["dokku", "plugin:install"], capture_output=True, text=True, env=h.env)
    assert idle.returncode == 0, idle.stdout + idle.stderr
    assert not stale.exists() and os.readlink(envs.parent / "venv") in {f"venvs/{p.name}" for p in envs.iterdir()}
