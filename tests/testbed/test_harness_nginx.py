"""The harness's model of Dokku 0.38's nginx proxy (tests/harness/nginx.py, gotemplate.py):
Dokku's own templates rendered the way sigil does, served by a real nginx that the tests reach
only on its 127.0.0.1-published port."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.harness import gotemplate
from tests.harness.paths import ROOT_LABEL, TEST_LABEL

from .conftest import _harness_module

TEMPLATES = Path(__file__).resolve().parents[1] / "harness" / "nginx_templates"
# Dokku's default server block plus one refused prefix, as an app would ship it
REFUSING = (TEMPLATES / "nginx.conf.sigil").read_text().replace(
    "  location    / {\n{{ if $.DOKKU_APP_WEB_LISTENERS }}",
    "  location ^~ /env/ {\n    return 404;\n  }\n\n  location    / {\n{{ if $.DOKKU_APP_WEB_LISTENERS }}", 1)


# ---- the template engine --------------------------------------------------------------------

def test_go_template_semantics_sigil_relies_on():
    r = gotemplate.render
    assert r('{{ range $x := .A | split " " }}[{{ $x }}]{{ end }}', {"A": "a b"}) == "[a][b]"
    # strings.Split("", " ") is [""]: one iteration, as with sigil
    assert r('{{ range $x := .A | split " " }}[{{ $x }}]{{ end }}', {"A": ""}) == "[]"
    assert r("{{ if .X }}x{{ else if .Y }}y{{ else }}z{{ end }}", {"X": "", "Y": "1"}) == "y"
    assert r('{{ $l := .P | split ":" }}{{ index $l 2 }}', {"P": "http:80:5000"}) == "5000"
    assert r("{{ if and .A (not .B) }}yes{{ end }}", {"A": "1", "B": ""}) == "yes"
    assert r("{{ or .A .B }}", {"A": "", "B": "b"}) == "b"
    assert r('{{ if eq .S "http" "https" }}web{{ end }}', {"S": "https"}) == "web"
    assert r("{{ .Missing }}|{{ if .Missing }}t{{ else }}f{{ end }}", {}) == "<no value>|f"
    assert r("a  {{- .X -}}  b", {"X": "1"}) == "a1b"
    assert r("{{/* a comment */}}{{ $.X }}", {"X": "root"}) == "root"
    with pytest.raises(gotemplate.TemplateError, match="index out of range"):
        r('{{ $l := .P | split ":" }}{{ index $l 1 }}', {"P": ""})
    with pytest.raises(gotemplate.TemplateError, match="not defined"):
        r("{{ nosuch .X }}", {"X": 1})


def test_dokku_default_template_renders_an_upstream_per_container_port():
    rendered = gotemplate.render((TEMPLATES / "nginx.conf.sigil").read_text(), {
        "APP": "web", "DOKKU_ROOT": "/home/dokku", "PROXY_PORT_MAP": "http:80:5000", "PROXY_UPSTREAM_PORTS": "5000",
        "DOKKU_APP_WEB_LISTENERS": "172.17.0.9:5000", "NGINX_BIND_ADDRESS_IP6": "::", "NOSSL_SERVER_NAME": "web.test",
        "HTTP2_DIRECTIVE_SUPPORTED": "false"})
    assert "proxy_pass  http://web-5000;" in rendered
    assert "server 172.17.0.9:5000;" in rendered
    assert "server_name web.test;" in rendered
    assert "include /home/dokku/web/nginx.conf.d/*.conf;" in rendered
    assert "return 502;" not in rendered


# ---- the proxy ------------------------------------------------------------------------------

@pytest.fixture
def proxied():
    h = _harness_module("fixture").make_harness(proxy=True)
    yield h
    h.cleanup()


def _image_with_template(h, base: str, template: str, tag: str) -> str:
    """``base`` plus /app/nginx.conf.sigil (the WORKDIR Dokku copies it from), cleaned up with h."""
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "nginx.conf.sigil").write_text(template)
        Path(ctx, "Dockerfile").write_text(f"FROM {base}\nCOPY nginx.conf.sigil /app/nginx.conf.sigil\n")
        subprocess.run(["docker", "build", "-q", "--label", f"{TEST_LABEL}=1", "--label", f"{ROOT_LABEL}={h.root}",
                        "-t", tag, ctx], check=True, capture_output=True,
                       env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"})
    return tag


def _app(h, name: str = "web") -> tuple[str, str]:
    app = h.unique(name)
    domain = f"{app}.harness.test"
    assert h.run("apps:create", app).returncode == 0
    assert h.run("domains:set", app, domain).returncode == 0
    assert h.run("ports:set", app, "http:80:5000").returncode == 0
    return app, domain


def _get(h, domain, path):
    status, _, body = h.proxy_request(domain, path)
    return status, body.decode(errors="replace")


def test_the_default_template_forwards_everything_to_the_web_container(proxied, harness_web_images):
    h = proxied
    app, domain = _app(h)
    assert _get(h, domain, "/ready")[0] == 502  # created, not deployed: Dokku's placeholder
    r = h.run("git:from-image", app, harness_web_images["ready"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Triggering early nginx proxy rebuild" in r.stdout
    assert f"Configuring {domain}...(using built-in template)" in r.stdout
    assert _get(h, domain, "/ready") == (200, "ready\n")
    assert _get(h, domain, "/env/PORT") == (200, "5000")
    assert _get(h, "unknown.harness.test", "/ready")[0] == 0  # the catch-all closes the connection
    first = h.nginx_conf(app)
    assert h.run("ps:restart", app).returncode == 0  # a new container, a new upstream address
    assert _get(h, domain, "/ready") == (200, "ready\n")
    assert h.run("nginx:show-config", app).stdout.rstrip("\n") == h.nginx_conf(app).rstrip("\n")
    assert first != h.nginx_conf(app)  # the upstream follows the new container's address


def test_an_app_supplied_template_is_kept_across_builds_rename_and_proxy_rebuilds(proxied, harness_web_images):
    h = proxied
    app, domain = _app(h)
    image = _image_with_template(h, harness_web_images["ready"], REFUSING, f"dokku-powersync-test/harness-web:{app}")
    r = h.run("git:from-image", app, image)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Pre-validating custom nginx.conf.sigil" in r.stdout
    assert f"Configuring {domain}...(using app-supplied template)" in r.stdout
    assert _get(h, domain, "/env/PORT")[0] == 404
    assert _get(h, domain, "/ready") == (200, "ready\n")
    for step in (("proxy:build-config", app), ("domains:add", app, f"www.{domain}"), ("ps:rebuild", app)):
        r = h.run(*step)
        assert r.returncode == 0, (step, r.stdout, r.stderr)
        assert _get(h, domain, "/env/PORT")[0] == 404, step
        assert _get(h, domain, "/ready")[0] == 200, step
    renamed = h.unique("renamed")
    r = h.run("apps:rename", app, renamed)
    assert r.returncode == 0, r.stdout + r.stderr
    assert h.nginx_conf(app) is None and "using app-supplied template" in r.stdout
    assert _get(h, domain, "/env/PORT")[0] == 404 and _get(h, domain, "/ready")[0] == 200
    # an operator can turn app templates off: the next build uses Dokku's default again
    assert h.run("nginx:set", renamed, "disable-custom-config", "true").returncode == 0
    assert h.run("proxy:build-config", renamed).returncode == 0
    assert _get(h, domain, "/env/PORT") == (200, "5000")
    assert h.run("nginx:set", renamed, "disable-custom-config", "").returncode == 0
    assert h.run("proxy:build-config", renamed).returncode == 0
    assert _get(h, domain, "/env/PORT")[0] == 404
    # an image without the file drops the kept copy
    assert h.run("git:from-image", renamed, harness_web_images["plain"]).returncode == 0
    assert h.run("proxy:build-config", renamed).returncode == 0
    assert _get(h, domain, "/env/PORT") == (200, "5000")


def test_a_template_nginx_refuses_fails_the_build_and_changes_nothing(proxied, harness_web_images):
    h = proxied
    app, domain = _app(h)
    assert h.run("git:from-image", app, harness_web_images["ready"]).returncode == 0
    broken = REFUSING.replace("return 404;", "no_such_directive on;")
    image = _image_with_template(h, harness_web_images["ready"], broken, f"dokku-powersync-test/harness-web:{app}")
    r = h.run("git:from-image", app, image)
    assert r.returncode == 1
    assert "Custom nginx.conf.sigil failed nginx -t validation" in r.stdout
    assert len([d for d in h.deploys(app) if d["outcome"] == "deployed"]) == 1
    assert _get(h, domain, "/env/PORT") == (200, "5000")
