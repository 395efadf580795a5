"""Issue 3's end-to-end path: create, set-rules, link, set-rules again, unlink, destroy."""
import json

import docker

from tests.e2e.conftest import RULES, RULES_2, app_config, create_instance, history, slots, sync_stream_status


def test_full_lifecycle(harness, backend):
    h = harness
    name = create_instance(h)
    info = json.loads(h.run("powersync:info", name, "--format", "json").stdout)
    assert info["status"] == "not deployed (no backend linked)"
    assert app_config(h, name)["NODE_OPTIONS"] == "--max-old-space-size=320"

    assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
    assert h.deploys(name) == []  # nothing is deployed before a backend is linked

    result = h.run("powersync:link", name, backend.app, "--kid", "backend-kid")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Auth checked end to end" in result.stdout
    assert backend.secret_key not in result.stdout + result.stderr
    # domains:set (in create_instance) cleared the ports map; the deploy re-asserted it.
    assert h.run("ports:report", name, "--ports-map").stdout.split() == ["http:80:8080"]
    env = app_config(h, name)
    assert env["PS_DATA_SOURCE_URI"].startswith("postgresql://postgres:")
    assert app_config(h, backend.app)["POWERSYNC_URL"] == f"http://{name}.example.test"
    deploys = h.deploys(name)
    assert len(deploys) == 1 and deploys[0]["checks"] == "app.json" and deploys[0]["outcome"] == "deployed"

    info = json.loads(h.run("powersync:info", name, "--format", "json").stdout)
    assert info["status"] == "running" and info["storage-database"] == "powersync_" + name.replace("-", "_")
    databases = h.run("postgres:connect", backend.service, input="SELECT datname FROM pg_database;\n").stdout
    assert info["storage-database"] in databases
    status, body = sync_stream_status(name, backend.token(backend.app, "backend-kid"))
    assert status == 200 and "checkpoint" in body
    assert sync_stream_status(name, backend.token("other-audience", "backend-kid"))[0] == 401
    assert sync_stream_status(name, backend.token(backend.app, "wrong-kid"))[0] == 401
    first_slots = [slot for slot in slots(h, backend.service) if slot.startswith(info["slot-prefix"])]
    assert len(first_slots) == 1

    before = len(h.deploys(name))
    result = h.run("powersync:set-rules", name, input=RULES_2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(h.deploys(name)) == before  # through the service's deploy API: no restart
    assert "r2 is active" in result.stdout
    assert sync_stream_status(name, backend.token(backend.app, "backend-kid"))[0] == 200

    # The same bytes again: no restart, readiness still checked.
    result = h.run("powersync:set-rules", name, input=RULES_2)
    assert result.returncode == 0 and "Rules unchanged" in result.stdout
    assert len(h.deploys(name)) == before

    result = h.run("powersync:unlink", name, backend.app)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [slot for slot in slots(h, backend.service) if slot.startswith(info["slot-prefix"])] == []
    assert "POWERSYNC_URL" not in app_config(h, backend.app)
    assert not any(key in app_config(h, name) for key in ("PS_SECRET_KEY_B64", "PS_DATA_SOURCE_URI", "DATABASE_URL"))

    result = h.run("powersync:destroy", name, "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    assert h.run("apps:exists", name).returncode == 20
    databases = h.run("postgres:connect", backend.service, input="SELECT datname FROM pg_database;\n").stdout
    assert info["storage-database"] not in databases
    assert not docker.from_env().containers.list(all=True, filters={"label": f"com.dokku.app-name={name}"})

    rows = history(h, name)
    assert [(row["event"], row["status"]) for row in rows] == [
        ("instance.created", "applied"),
        ("rules.set", "stored"),
        ("backend.linked", "applied"),
        ("rules.activated", "observed"),
        ("rules.set", "applied"),
        ("rules.activated", "observed"),
        ("backend.unlinked", "applied"),
        ("instance.destroyed", "applied"),
    ]
    assert [row["rules_revision"] for row in rows if row["event"] == "rules.set"] == ["r1", "r2"]
    assert rows[2]["description"] == f"Linked to {backend.app}"
    assert all(row["actor"] for row in rows)
    assert h.run("powersync:exists", name).returncode == 1


def test_instances_on_one_server_keep_their_own_slots(harness, source):
    from tests.e2e.conftest import make_backend

    h = harness
    first, second = make_backend(h, source), make_backend(h, source)
    names = [create_instance(h), create_instance(h)]
    for name, backend in zip(names, (first, second)):
        assert h.run("powersync:set-rules", name, input=RULES).returncode == 0
        result = h.run("powersync:link", name, backend.app)
        assert result.returncode == 0, result.stdout + result.stderr
    prefixes = [json.loads(h.run("powersync:info", n, "--format", "json").stdout)["slot-prefix"] for n in names]
    assert all(any(s.startswith(p) for s in slots(h, source)) for p in prefixes)
    assert h.run("powersync:unlink", names[0], first.app).returncode == 0
    remaining = slots(h, source)
    assert not any(s.startswith(prefixes[0]) for s in remaining)
    assert any(s.startswith(prefixes[1]) for s in remaining)
    assert h.run("powersync:unlink", names[1], second.app).returncode == 0
