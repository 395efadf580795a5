"""The harness's certs:* / letsencrypt:* against Dokku v0.38.27 plugins/certs + plugins/ports
and dokku-letsencrypt (sources listed in tests/harness/certs.py): ports map, triggers, reports."""
from __future__ import annotations

import io
import json
import subprocess
import tarfile

from harness.fixture import self_signed_cert


def ports(h, app):
    return h.run("ports:report", app, "--ports-map").stdout.split()


def fired(h, name, app):
    return [t["args"] for t in h.triggers(name) if t["args"][:1] == [app]]


def test_certs_add_and_remove_move_the_https_mapping(harness):
    h = harness
    h.run("apps:create", "tapp1")
    h.run("ports:set", "tapp1", "http:80:8080", "http:8000:9000")
    crt, key = self_signed_cert(h, "ps.example.test", "alt.example.test")
    r = h.run("certs:add", "tapp1", str(crt), str(key))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert ports(h, "tapp1") == ["http:8000:9000", "http:80:8080", "https:443:8080"]  # Go's sort.Strings
    assert fired(h, "post-certs-update", "tapp1") == [["tapp1"]]
    assert fired(h, "post-domains-update", "tapp1")[-1] == ["tapp1"]
    assert h.run("certs:report", "tapp1", "--ssl-enabled").stdout == "true\n"
    assert h.run("certs:report", "tapp1", "--ssl-hostnames").stdout == "alt.example.test ps.example.test\n"
    assert h.run("certs:report", "tapp1", "--ssl-verified").stdout == "self signed\n"
    report = json.loads(h.run("certs:report", "tapp1", "--format", "json").stdout)
    assert report["enabled"] == "true" and report["dir"].endswith("/home/dokku/tapp1/tls")
    assert h.run("letsencrypt:active", "tapp1").stdout == "false\n"  # not a Let's Encrypt certificate

    h.run("certs:add", "tapp1", str(crt), str(key))  # already mapped: nothing added twice
    assert ports(h, "tapp1") == ["http:8000:9000", "http:80:8080", "https:443:8080"]  # Go's sort.Strings

    r = h.run("certs:remove", "tapp1")
    assert (r.returncode, r.stdout) == (0, "-----> Removing SSL endpoint from tapp1\n")
    assert ports(h, "tapp1") == ["http:8000:9000", "http:80:8080"]
    assert fired(h, "post-certs-remove", "tapp1") == [["tapp1"]]
    assert h.run("certs:report", "tapp1", "--ssl-enabled").stdout == "false\n"
    r = h.run("certs:remove", "tapp1")
    assert (r.returncode, r.stderr) == (1, " !     An app-specific SSL endpoint is not defined\n")


def test_certs_add_from_a_tarball_and_bad_input(harness):
    h = harness
    h.run("apps:create", "tapp1")
    crt, key = self_signed_cert(h, "ps.example.test")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(crt, "server.crt")
        tar.add(key, "server.key")
    r = subprocess.run(["dokku", "certs:add", "tapp1"], input=buf.getvalue(), capture_output=True, env=h.env)
    assert r.returncode == 0, r.stderr
    assert h.run("certs:report", "tapp1", "--ssl-enabled").stdout == "true\n"
    # An empty map gains no https entry; the detected map does (getDetectedPortMaps).
    assert ports(h, "tapp1") == []
    r = h.run("ports:add", "tapp1", "http:80:8080", "http:80:9000")
    assert (r.returncode, r.stderr) == (
        1, " !     Error validating new port mappings: The same scheme:host-port is being reused: http:80\n")
    assert h.run("ports:report", "tapp1", "--ports-map-detected").stdout.split() == ["http:80:5000", "https:443:5000"]

    only_crt = io.BytesIO()
    with tarfile.open(fileobj=only_crt, mode="w") as tar:
        tar.add(crt, "server.crt")
    r = subprocess.run(["dokku", "certs:add", "tapp1"], input=only_crt.getvalue(), capture_output=True, env=h.env)
    assert (r.returncode, r.stderr) == (1, b" !     Tar archive is missing .key file\n")
    r = h.run("certs:add", "tapp1", "/nonexistent.crt", str(key))
    assert (r.returncode, r.stderr) == (1, " !     CRT file specified not found, please check file paths\n")
    assert h.run("certs:add", "nope", str(crt), str(key)).returncode == 20


def test_letsencrypt_enable_maps_http_then_https_and_disable_removes_it(harness):
    h = harness
    h.run("apps:create", "tapp1")
    r = h.run("letsencrypt:enable", "tapp1")
    assert (r.returncode, r.stderr) == (1, " !     No domains detected for tapp1\n")
    h.run("domains:set", "tapp1", "ps.example.test")  # clears the ports map (0.38.27)
    h.run("ports:set", "tapp1", "http:8080:8080")  # as the detected map of a deployed EXPOSE 8080 image
    r = h.run("letsencrypt:enable", "tapp1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Adding http:80:8080 port mapping to tapp1 for ACME HTTP-01 challenge..." in r.stdout
    assert ports(h, "tapp1") == ["http:8080:8080", "http:80:8080", "https:443:8080"]
    assert h.run("letsencrypt:active", "tapp1").stdout == "true\n"
    assert h.run("certs:report", "tapp1", "--ssl-enabled").stdout == "true\n"
    assert fired(h, "post-certs-update", "tapp1") == [["tapp1"]]

    again = h.run("letsencrypt:enable", "tapp1")  # still valid: no new certificate, no trigger
    assert "skipping certificate request" in again.stdout
    assert fired(h, "post-certs-update", "tapp1") == [["tapp1"]]

    r = h.run("letsencrypt:disable", "tapp1")
    assert r.returncode == 0
    assert ports(h, "tapp1") == ["http:8080:8080", "http:80:8080"]
    assert h.run("letsencrypt:active", "tapp1").stdout == "false\n"
    assert fired(h, "post-certs-remove", "tapp1") == [["tapp1"]]
