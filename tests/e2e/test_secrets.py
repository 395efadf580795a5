"""Issue 7: no secret in any output, the journal's payloads, logs or files; modes 0600/0700."""
import os
import stat
from pathlib import Path

from tests.e2e.conftest import RULES, RULES_2, create_instance, make_backend


def test_no_secret_leaks_anywhere(harness, source):
    h = harness
    secret = "S3cr3t-" + "z" * 60
    backend = make_backend(h, source, secret_key=secret)
    from powersync_plugin.core.derive import secret_key_b64

    dsn = h.run("postgres:info", source, "--dsn").stdout.strip()
    dsn_password = dsn.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    name = create_instance(h)
    outputs = []

    def run(*args, input=None, trace=False):
        result = h.run(*args, input=input, env={"DOKKU_TRACE": "1"} if trace else None)
        outputs.append(f"$ {args[0]}\n{result.stdout}\n{result.stderr}")
        return result

    run("powersync:set-rules", name, input=RULES)
    run("powersync:link", name, backend.app, "--dry-run")
    run("powersync:link", name, backend.app)
    api_token = h.run("config:get", name, "PS_API_TOKEN").stdout.strip()
    for args in (
        ("powersync:info", name), ("powersync:info", name, "--format", "json"), ("powersync:info", name, "--api-token"),
        ("powersync:history", name), ("powersync:history", name, "--format", "json"),
        ("powersync:history", name, "--show", "1"), ("powersync:status", name, "--format", "json"),
        ("powersync:status", name), ("powersync:list",), ("powersync:links", name),
        ("powersync:link", name, "other-app"), ("powersync:reconcile", name, "--dry-run"),
        ("powersync:rollback-rules", name, "--dry-run"), ("powersync:upgrade", name, "--dry-run"),
    ):
        run(*args)
    run("powersync:set-rules", name, input=RULES_2, trace=True)
    run("powersync:set-rules", name, "--dry-run", input=RULES)
    run("powersync:set-rules", name, input="bucket_definitions: [\n")
    run("config:set", "--no-restart", backend.app, "DATABASE_URL=mysql://u:" + dsn_password + "@x/y")  # a bad rotation
    run("config:set", "--no-restart", backend.app, f"DATABASE_URL={dsn}")
    run("powersync:unlink", name, backend.app, trace=True)
    run("powersync:destroy", name, "--force")

    data_root = Path(h.root) / "var/lib/dokku/services/powersync"
    journal = (data_root / "journal.sqlite3").read_bytes()
    forbidden = {"SECRET_KEY": secret, "derived key": secret_key_b64(secret), "DSN password": dsn_password}
    plugin_output = "\n".join(outputs)
    # Dokku's own config:set echo of the bad DATABASE_URL is Dokku's output, not the plugin's.
    plugin_output = "\n".join(line for line in plugin_output.splitlines() if "DATABASE_URL:" not in line)
    for what, value in {**forbidden, "API token": api_token}.items():
        assert value not in plugin_output, f"{what} leaked in command output"
    for what, value in forbidden.items():
        assert value.encode() not in journal, f"{what} stored in the journal"
    calls = (Path(h.root) / "calls.jsonl").read_text()
    for what, value in {**forbidden, "API token": api_token}.items():
        assert value not in calls, f"{what} in the recorded command lines"

    assert stat.S_IMODE(os.stat(data_root).st_mode) == 0o700
    for path in data_root.rglob("*"):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
