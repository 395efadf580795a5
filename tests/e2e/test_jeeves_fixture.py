"""The Jeeves fixture (tests/e2e/jeeves.py) really leaves the hand-made end state, in both layouts."""
import base64
import json

import docker
import pytest

from tests.e2e.conftest import app_config
from tests.e2e.jeeves import CONFIG_PATH_IN_CONTAINER, IMAGE, b64url_nopad, deploy_jeeves


@pytest.fixture(scope="module", params=["config-b64", "config-path"])
def jeeves(request, harness):
    return deploy_jeeves(harness, request.param)


def test_instance_runs_and_serves_the_backend_tokens(harness, jeeves):
    h, d = harness, jeeves
    assert d.product.startswith("jv") and d.powersync_app == f"{d.product}-powersync"
    container = docker.from_env().containers.get(f"{d.powersync_app}.web.1")
    assert container.status == "running"
    assert ["git:from-image", d.powersync_app, IMAGE] in h.commands()  # the plain image, by tag
    assert d.readiness() == 200

    status, body = d.sync_status(d.token())
    assert status == 200 and "checkpoint" in body
    assert d.sync_status(d.token(kid="other-dev"))[0] == 401
    assert d.sync_status(d.token(audience="someone-else"))[0] == 401
    assert d.sync_status(d.token(secret="x" * 86))[0] == 401


def test_one_default_prefix_slot_on_the_source(jeeves):
    ours = [slot for slot in jeeves.current_slots() if slot.startswith("powersync_")]
    assert len(ours) == 1
    assert jeeves.slots == ours


def test_config_vars_and_app_settings(harness, jeeves):
    h, d = harness, jeeves
    env = app_config(h, d.powersync_app)
    assert len(d.secret_key) >= 64
    assert env["PS_SECRET_KEY_B64"] == b64url_nopad(d.secret_key)
    assert "=" not in env["PS_SECRET_KEY_B64"] and "\n" not in env["PS_SECRET_KEY_B64"]
    assert base64.urlsafe_b64decode(env["PS_SECRET_KEY_B64"] + "==").decode() == d.secret_key
    assert env["PS_DATA_SOURCE_URI"] == env["DATABASE_URL"]
    assert env["DATABASE_URL"].startswith("postgres://postgres:") and f"@dokku-postgres-{d.service}:" in env["DATABASE_URL"]
    assert env["NODE_OPTIONS"] == "--max-old-space-size=400"
    assert "PS_JEEVES_SECRET_KEY_B64" in env  # a leftover from the older scripts

    backend = app_config(h, d.backend_app)
    assert backend["POWERSYNC_URL"] == f"https://{d.domain}"
    assert backend["SECRET_KEY"] == d.secret_key
    assert backend["DATABASE_URL"] == env["DATABASE_URL"]

    info = h.run("postgres:info", d.service).stdout
    links = next(line for line in info.splitlines() if line.strip().startswith("Links:")).split()[1:]
    assert sorted(links) == sorted([d.backend_app, d.powersync_app])
    assert h.run("domains:report", d.powersync_app, "--domains-app-vhosts").stdout.split() == [d.domain]
    assert h.run("letsencrypt:active", d.powersync_app).stdout.strip() == "true"
    assert "400m" in h.run("resource:report", d.powersync_app).stdout
    # a certificate but no https:443 mapping: see "Ports" in jeeves.py
    assert h.run("certs:report", d.powersync_app, "--ssl-enabled").stdout.strip() == "true"
    assert h.run("ports:report", d.powersync_app, "--ports-map").stdout.split() == ["http:80:8080"]
    wal = h.run("postgres:connect", d.service, input="SHOW wal_level;\n").stdout
    assert "logical" in wal
    pubs = h.run("postgres:connect", d.service, input="SELECT tablename FROM pg_publication_tables WHERE pubname='powersync';\n").stdout
    assert all(table in pubs for table in ("todos", "tags", "todo_tags"))


def test_config_text_is_jeeves_shaped(jeeves):
    d = jeeves
    text = d.config_yaml
    assert "uri: !env PS_DATA_SOURCE_URI" in text and text.count("sslmode: disable") == 2
    assert f'audience: ["{d.product}"]' in text and f"kid: {d.kid}" in text
    assert "k: !env PS_SECRET_KEY_B64" in text and "api:\n  port: 8080\n" in text
    assert "tokens" not in text  # the Jeeves config has no admin API token
    assert "slot_name_prefix" not in text
    assert d.rules.count("SELECT token_parameters.user_id AS user_id") == d.rules.count("by_user_") >= 3
    # the rules sit byte for byte in the config's block scalar
    indented = "".join("    " + line if line.strip() else line for line in d.rules.splitlines(keepends=True))
    assert "  content: |\n" + indented in text


def test_layout_specific_state(harness, jeeves):
    h, d = harness, jeeves
    env = app_config(h, d.powersync_app)
    mounts = json.loads(h.run("storage:list", d.powersync_app, "--format", "json").stdout or "[]")
    if d.layout == "config-path":
        assert "POWERSYNC_CONFIG_B64" not in env
        assert env["POWERSYNC_CONFIG_PATH"] == CONFIG_PATH_IN_CONTAINER
        assert [(m["host_path"], m["container_path"]) for m in mounts] == [(str(d.config_dir), "/config")]
        assert (d.config_dir / "sync-config.yaml").read_text() == d.config_yaml
        container = docker.from_env().containers.get(f"{d.powersync_app}.web.1")
        result = container.exec_run(["cat", CONFIG_PATH_IN_CONTAINER])
        assert result.exit_code == 0 and result.output.decode() == d.config_yaml
    else:
        assert base64.b64decode(env["POWERSYNC_CONFIG_B64"]).decode() == d.config_yaml
        assert "\n" not in env["POWERSYNC_CONFIG_B64"]
        assert "POWERSYNC_CONFIG_PATH" not in env
        assert mounts == []
