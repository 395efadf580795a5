"""Issue 11, secrets at rest: an adopted deployment's config extras can read secrets the plugin
did not make with `!env` (here an old JWKS key being rotated out, `k: !env PS_OLD_SECRET_KEY_B64`);
the plugin keeps the extras to render the same config again. The project's before-stop hook scans
no output for secrets, so this test is that scan for them: the value (and the key it encodes)
appears in nothing the plugin prints, in no command line it starts, and in no file it stores (the
journal keeps the variable's name). An inline JWKS secret is refused at adoption (test_adopt).
"""
import os
import stat
from pathlib import Path

from tests.e2e import jeeves
from tests.e2e.conftest import history


def test_adopted_env_secrets_appear_in_no_output(harness):
    h = harness
    d = jeeves.deploy_jeeves(h, "config-b64", old_key=True)
    app = d.powersync_app
    env_value = h.run("config:get", app, "PS_OLD_SECRET_KEY_B64").stdout.strip()
    assert env_value == jeeves.b64url_nopad(d.old_secret)
    outputs = []

    def run(*args, input=None, trace=False):
        result = h.run(*args, input=input, env={"DOKKU_TRACE": "1"} if trace else None)
        outputs.append(f"$ {' '.join(args)}\n{result.stdout}\n{result.stderr}")
        return result

    run("powersync:adopt", app, "--dry-run")
    assert run("powersync:adopt", app, trace=True).returncode == 0, outputs[-1]
    assert run("powersync:set-rules", app, input=d.rules + "\n").returncode == 0, outputs[-1]  # re-renders the extras
    revisions = [row["revision"] for row in history(h, app)]
    for args in (
        ("powersync:info", app), ("powersync:info", app, "--format", "json"),
        ("powersync:history", app), ("powersync:history", app, "--format", "json"),
        *(("powersync:history", app, "--show", str(rev)) for rev in revisions),
        ("powersync:status", app), ("powersync:status", app, "--format", "json"),
        ("powersync:reconcile", app, "--dry-run"), ("powersync:upgrade", app, "--dry-run"),
        ("powersync:rules", app), ("powersync:list",), ("powersync:links", app),
    ):
        assert run(*args).returncode == 0, outputs[-1]
    adopted = next(text for text in outputs if text.startswith(f"$ powersync:history {app} --show 1\n"))
    assert "*****" in adopted, adopted  # the extras are shown, their keys masked

    forbidden = {"the !env value": env_value, "the old key": d.old_secret}
    everything = "\n".join(outputs)
    for what, value in forbidden.items():
        assert value not in everything, f"{what} in the plugin's output"
    calls = (Path(h.root) / "calls.jsonl").read_text()
    for what, value in forbidden.items():
        assert value not in calls, f"{what} on a recorded command line"

    # At rest, in the journal and its -wal file included: only the variable's name.
    data_root = Path(h.root) / "var/lib/dokku/services/powersync"
    stored = b"".join(path.read_bytes() for path in data_root.rglob("*") if path.is_file())
    assert b"PS_OLD_SECRET_KEY_B64" in stored
    for what, value in forbidden.items():
        assert value.encode() not in stored, f"{what} stored by the plugin"
    for path in data_root.glob("journal.sqlite3*"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
