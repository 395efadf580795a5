"""History records who ran a command: the SSH key's name over SSH, the person on the host.

On the host Dokku exports SSH_NAME=default (NAME is unset outside sshcommand) and re-execs
itself as dokku with `sudo -u dokku -E`, so "default" says nothing about who it was.
"""
from tests.e2e.conftest import create_instance, history


def test_history_names_the_host_user_not_default(harness):
    h = harness
    name = create_instance(h)
    [row] = history(h, name)
    assert row["actor"] == "root"


def test_history_names_the_ssh_key_over_ssh(harness):
    h = harness
    name = create_instance(h)
    # sshcommand's forced command sets NAME to the key's name (`sshcommand acl-add dokku NAME`).
    assert h.run("powersync:set", name, "auto-rotate", "false", env={"NAME": "deploy-bot"}).returncode == 0
    assert history(h, name)[-1]["actor"] == "deploy-bot"
