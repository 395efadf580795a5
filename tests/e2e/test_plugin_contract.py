"""Issue 3's plugin contract on the harness: install trigger, help, dispatch, foreign commands."""
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
        removed = h.run("plugin:uninstall", "powersync")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert not (env_root / "venv").exists() and not (env_root / "venvs").exists()
        assert h.run("help").returncode == 0
    finally:
        h.cleanup()
