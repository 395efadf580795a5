"""What a failing test prints carries no secret (tests/secrets_in_output.py).

The proof runs pytest on a file of assertions that fail the way this suite's do, with secrets
in the compared values, once with the redacting hooks and once without: without them the
secrets must show (else the proof proves nothing), with them no eight characters of any may
show, and the failures must still say what went wrong. The asserts here name the leaked secret
and never print it.
"""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from powersync_plugin.core.derive import secret_key_b64, sign_hs256
from tests.secrets_in_output import redact, redact_text

ROOT = Path(__file__).resolve().parents[2]
API_TOKEN = "q8Xk2Lm9Tz4Vb7Nc1Rw5Ys3Ud6Fh0Jp2Ea8Gi4OkZw1"  # as secrets.token_urlsafe(32) makes them
SECRET_KEY = "k" * 64  # as the e2e backends' SECRET_KEY: no pattern finds it, the test names it
DSN_PASSWORD = "9f3c2a7e51d04b86a1e2c3d4f5a6b7c8"  # as the harness's postgres:create makes them
JWT = sign_hs256(SECRET_KEY.encode(), {"sub": "user-1", "aud": "api"}, "backend-kid")
SECRETS = {
    "API token": API_TOKEN, "SECRET_KEY": SECRET_KEY, "derived key": secret_key_b64(SECRET_KEY),
    "DSN password": DSN_PASSWORD, "JWT": JWT,
}

FAILING = textwrap.dedent(f'''
    import json
    import subprocess

    import pytest

    from tests.secrets_in_output import known

    API_TOKEN, SECRET_KEY, DERIVED, DSN_PASSWORD, JWT = {API_TOKEN!r}, {SECRET_KEY!r}, {secret_key_b64(SECRET_KEY)!r}, {DSN_PASSWORD!r}, {JWT!r}
    DSN = f"postgres://postgres:{{DSN_PASSWORD}}@dokku-postgres-db:5432/db"


    def journal_rows(count):
        payload = json.dumps({{"name": "ps-1", "api_token": API_TOKEN, "memory_mb": 512}})
        return [(n, "ps-1", n, "instance.created" if n == 1 else "rules.set", payload) for n in range(1, count + 1)]


    def run(*args, stdout=""):
        return subprocess.CompletedProcess(["dokku", *args], 1, stdout, " !     refused\\n")


    def test_journal_rows_compared():
        rows_before = journal_rows(2)
        assert journal_rows(3) == rows_before


    def test_world_snapshot_compared():
        config = {{"PS_API_TOKEN": API_TOKEN, "PS_SECRET_KEY_B64": DERIVED, "PS_DATA_SOURCE_URI": DSN, "POWERSYNC_URL": "http://a.test"}}
        before = {{"configs": {{"ps-1": config}}, "apps": "ps-1\\n"}}
        assert {{"configs": {{"ps-1": {{**config, "POWERSYNC_URL": "http://b.test"}}}}, "apps": "ps-1\\n"}} == before


    def test_output_searched():
        shown = run("config:show", "ps-1", stdout=f"=====> ps-1 env vars\\nPS_API_TOKEN:  {{API_TOKEN}}\\nPS_DATA_SOURCE_URI: {{DSN}}\\n")
        assert "ready" in shown.stdout


    def test_message_of_output():
        result = run("postgres:info", "db", "--dsn", stdout=DSN + "\\n")
        assert result.returncode == 0, result.stdout + result.stderr


    def test_command_line_in_where_clause():
        assert run("config:set", "--no-restart", "api", f"SECRET_KEY={{SECRET_KEY}}", f"DATABASE_URL={{DSN}}").returncode == 0


    def test_container_env_searched():
        env = [f"PS_API_TOKEN={{API_TOKEN}}", f"PS_SECRET_KEY_B64={{DERIVED}}", "NODE_OPTIONS=--max-old-space-size=400"]
        assert "NODE_OPTIONS=--max-old-space-size=320" in env


    def test_secret_found_in_output():
        known(SECRET_KEY)
        output = f"-----> Linking\\nSECRET_KEY was {{SECRET_KEY}}\\n"
        assert SECRET_KEY not in output, "SECRET_KEY leaked in command output"


    def test_fail_with_text():
        pytest.fail(f"the instance answered 401 to Authorization: Bearer {{JWT}} (env PS_SECRET_KEY_B64={{DERIVED}})")


    def test_captured_output():
        print("token for the client:", JWT, "admin token:", API_TOKEN)
        assert False, "see the captured output"
''')


def pytest_output(tmp_path: Path, *args: str) -> str:
    (tmp_path / "test_failing.py").write_text(FAILING)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, "test_failing.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    return result.stdout + result.stderr


def leaked(output: str) -> list[str]:
    """The secrets of which any eight characters show in `output`, by name."""
    return [name for name, secret in SECRETS.items() if any(secret[i:i + 8] in output for i in range(len(secret) - 7))]


def test_without_the_hooks_the_failures_print_every_secret(tmp_path):
    output = pytest_output(tmp_path, "-q")
    assert "9 failed" in output
    assert [name for name, secret in SECRETS.items() if secret not in output] == []


@pytest.mark.parametrize("args", [("-q",), ("-vv", "-l"), ("--tb=native", "-l"), ("-n", "1")], ids=" ".join)
def test_with_the_hooks_the_failures_print_no_secret(tmp_path, args):
    output = pytest_output(tmp_path, "-p", "tests.secrets_in_output", *args)
    assert "9 failed" in output
    assert leaked(output) == []


def test_with_the_hooks_the_failures_still_say_what_differs(tmp_path):
    output = pytest_output(tmp_path, "-p", "tests.secrets_in_output", "-q")
    # The row the journal gained, the config var that changed, the text looked for and where.
    assert "Left contains one more item: (3, 'ps-1', 3, 'rules.set', '{\"name\": \"ps-1\", \"api_token\": \"<redacted: 43 chars, sha256 " in output
    assert "'POWERSYNC_URL': 'http://b.test'}}} != {'configs': {'ps-1': {'PS_API_TOKEN': '<redacted: 43 chars, sha256 " in output
    assert "'POWERSYNC_URL': 'http://a.test'}}}" in output
    assert "assert 'ready' in '=====> ps-1 env vars\\nPS_API_TOKEN:  <redacted: 43 chars, sha256 " in output
    assert "postgres://postgres:<redacted: 32 chars, sha256 " in output and " !     refused" in output
    assert "'SECRET_KEY=<redacted: 64 chars, sha256 " in output
    assert "'NODE_OPTIONS=--max-old-space-size=320' in ['PS_API_TOKEN=<redacted: 43 chars, sha256 " in output
    assert "SECRET_KEY leaked in command output" in output and "is contained here:" in output
    assert "the instance answered 401 to Authorization: Bearer <redacted: 146 chars, sha256 " in output
    assert "(env PS_SECRET_KEY_B64=<redacted: 86 chars, sha256 " in output
    assert "token for the client: <redacted: " in output
    # The same secret masks the same way everywhere; two different ones differently.
    marker = redact_text(f"PS_API_TOKEN={API_TOKEN}").split("=", 1)[1]
    assert output.count(marker) >= 5 and redact_text(f"PS_API_TOKEN={API_TOKEN[::-1]}").split("=", 1)[1] != marker


def test_values_named_as_secrets_are_masked_whole_and_the_rest_stays_readable():
    container_id = "3f" * 32
    value = {
        "Env": [f"PS_API_TOKEN={API_TOKEN}", "NODE_OPTIONS=--max-old-space-size=320"],
        "keys": [{"kty": "oct", "kid": "backend-kid", "k": secret_key_b64(SECRET_KEY)}],
        "payload": json.dumps({"source_role_password": "pw-of-the-role", "rules_digest": "d" * 64}),
        "config": "client_auth:\n  jwks:\n    keys:\n      - k: !env PS_SECRET_KEY_B64\n",
        "DATABASE_URL": f"postgres://postgres:{DSN_PASSWORD}@dokku-postgres-db:5432/db",
        "Id": container_id, "SECRET_KEY": SECRET_KEY,
    }
    shown = repr(redact(value))
    assert leaked(shown) == []
    assert "pw-of-the-role" not in shown
    for readable in ("NODE_OPTIONS=--max-old-space-size=320", "'kid': 'backend-kid'", '"rules_digest": "' + "d" * 64,
                     "k: !env PS_SECRET_KEY_B64", "postgres://postgres:<redacted: 32 chars", container_id):
        assert readable in shown


def test_what_a_test_hands_dokku_or_reads_back_becomes_known():
    from tests.secrets_in_output import learn_from_command

    secret_key, role_password, api_token = "m" * 70, "rotated" + "9" * 25, "t" * 43
    learn_from_command(["config:set", "--no-restart", "api", f"SECRET_KEY={secret_key}", "POWERSYNC_URL=http://ps-1.test"], None, "")
    learn_from_command(["postgres:info", "db", "--dsn"], None, f"postgres://postgres:{DSN_PASSWORD}@dokku-postgres-db:5432/db\n")
    learn_from_command(["postgres:connect", "db"], f"ALTER USER powersync_ps_1 WITH PASSWORD '{role_password}';\n", "ALTER ROLE\n")
    learn_from_command(["config:get", "ps-1", "PS_API_TOKEN"], None, api_token + "\n")
    shown = redact_text(f"{secret_key} {DSN_PASSWORD} {role_password} {api_token} http://ps-1.test")
    assert shown.count("<redacted: ") == 4 and shown.endswith(" http://ps-1.test")
