"""Issue 10 item 4 (real-host finding 4): HTTPS survives every publish, and the backend's
POWERSYNC_URL follows the instance's domain and TLS.

A certificate added with `certs:add` (or by letsencrypt, which installs its own through
`certs:add`) makes Dokku map `https:443:8080` next to `http:80:8080`. A publish must keep that
mapping and must not ask Let's Encrypt for a certificate; `certs:add` / `certs:remove` /
`domains:set` on a linked instance move the backend's POWERSYNC_URL.
"""
import shutil

from harness.fixture import self_signed_cert

from tests.e2e.conftest import RULES_2, app_config, history, linked_instance


def ports_map(h, app):
    return h.run("ports:report", app, "--ports-map").stdout.split()


def add_cert(h, app, *domains):
    crt, key = self_signed_cert(h, *domains)
    result = h.run("certs:add", app, str(crt), str(key))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_set_rules_keeps_the_https_mapping_and_requests_no_certificate(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    add_cert(h, name, f"{name}.example.test")
    assert ports_map(h, name) == ["http:80:8080", "https:443:8080"]
    calls_before = len(h.commands())

    result = h.run("powersync:set-rules", name, input=RULES_2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ports_map(h, name) == ["http:80:8080", "https:443:8080"]
    made = [argv[0] for argv in h.commands()[calls_before:]]
    assert "powersync:set-rules" in made and "ports:set" not in made and "letsencrypt:enable" not in made, made


def test_certs_and_domain_changes_move_the_backend_url(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    domain = f"{name}.example.test"
    assert app_config(h, backend.app)["POWERSYNC_URL"] == f"http://{domain}"
    deploys = len(h.deploys(name))

    result = add_cert(h, name, domain)
    assert app_config(h, backend.app)["POWERSYNC_URL"] == f"https://{domain}"
    assert f"POWERSYNC_URL=https://{domain}" in result.stdout
    assert history(h, name)[-1]["event"] == "instance.url_changed"

    result = h.run("certs:remove", name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert app_config(h, backend.app)["POWERSYNC_URL"] == f"http://{domain}"

    moved = f"moved-{name}.example.test"
    result = h.run("domains:set", name, moved)
    assert result.returncode == 0, result.stdout + result.stderr
    assert app_config(h, backend.app)["POWERSYNC_URL"] == f"http://{moved}"
    assert history(h, name)[-1]["description"] == f"URL changed to http://{moved} (domains:set)"
    assert len(h.deploys(name)) == deploys  # the instance itself is not redeployed by the hooks


def test_a_hand_set_backend_url_is_left_alone_and_reconcile_repairs_a_missed_change(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    domain = f"{name}.example.test"
    assert h.run("config:set", "--no-restart", backend.app, "POWERSYNC_URL=https://cdn.example.test").returncode == 0
    result = add_cert(h, name, domain)
    assert result.returncode == 0
    assert app_config(h, backend.app)["POWERSYNC_URL"] == "https://cdn.example.test"
    assert "was set by hand" in result.stderr
    assert h.run("certs:remove", name).returncode == 0
    assert h.run("config:set", "--no-restart", backend.app, f"POWERSYNC_URL=http://{domain}").returncode == 0

    # A certificate installed behind Dokku's back (no trigger fired): reconcile repairs the URL.
    crt, key = self_signed_cert(h, domain)
    tls = h.root / "home/dokku" / name / "tls"
    tls.mkdir(mode=0o755)
    shutil.copy(crt, tls / "server.crt")
    shutil.copy(key, tls / "server.key")
    dry = h.run("powersync:reconcile", name, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"set backend POWERSYNC_URL on {backend.app} https://{domain}" in dry.stdout
    assert app_config(h, backend.app)["POWERSYNC_URL"] == f"http://{domain}"
    result = h.run("powersync:reconcile", name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert app_config(h, backend.app)["POWERSYNC_URL"] == f"https://{domain}"
    assert history(h, name)[-1]["description"] == f"URL changed to https://{domain} (powersync:reconcile)"
