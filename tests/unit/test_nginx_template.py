"""The nginx.conf.sigil the derived image carries: Dokku 0.38.27's default template plus one
refusal of the admin and sync-rules APIs in every http/https server block (issue 11)."""
from __future__ import annotations

import re
from pathlib import Path

from powersync_plugin.adapters import docker_engine
from powersync_plugin.adapters.docker_engine import ImageView, build_context, derived_tag
from tests.harness import gotemplate

ROOT = Path(__file__).resolve().parents[2]
DOKKU_DEFAULT = (ROOT / "tests/harness/nginx_templates/nginx.conf.sigil").read_text()
OURS = docker_engine.NGINX_TEMPLATE.read_text()
REFUSAL = "location ~* ^/api/(admin|sync-rules) {\n    return 404;\n  }"


def values(port_map: str, ssl: bool) -> dict:
    return {"APP": "ps", "DOKKU_ROOT": "/home/dokku", "DOKKU_LIB_ROOT": "/var/lib/dokku", "PROXY_PORT_MAP": port_map,
            "PROXY_UPSTREAM_PORTS": "8080", "DOKKU_APP_WEB_LISTENERS": "172.17.0.2:8080", "NGINX_BIND_ADDRESS_IP6": "::",
            "NOSSL_SERVER_NAME": "ps.example.com", "SSL_INUSE": "true" if ssl else "", "PROXY_SSL_PORT": "443",
            "HTTP2_DIRECTIVE_SUPPORTED": "false"}


def squeeze(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.strip())


def test_it_is_dokkus_default_template_plus_the_marked_refusal():
    without_comments = re.sub(r"[ \t]*\{\{/\*.*?\*/\}\}\n", "", OURS, flags=re.S)
    assert without_comments.replace("  " + REFUSAL + "\n\n", "", 1) == DOKKU_DEFAULT


def test_every_server_block_refuses_the_apis_before_proxying():
    for port_map, ssl in (("http:80:8080", False), ("http:80:8080 https:443:8080", True)):
        rendered = gotemplate.render(OURS, values(port_map, ssl))
        servers = rendered.split("server {")[1:]
        assert len(servers) == len(port_map.split())
        for server in servers:
            assert REFUSAL in server
            if "proxy_pass" in server:
                assert server.index(REFUSAL) < server.index("location    / {")
        assert squeeze(rendered.replace(REFUSAL, "")) == squeeze(gotemplate.render(DOKKU_DEFAULT, values(port_map, ssl)))


def test_the_derived_image_carries_it_and_its_tag_follows_the_files(tmp_path, monkeypatch):
    assert build_context()["nginx.conf.sigil"] == OURS.encode()
    base = ImageView(id="sha256:" + "a" * 64, digest="sha256:" + "b" * 64, labels={}, tags=())
    before = derived_tag(base, "1.25.0")
    changed = tmp_path / "nginx.conf.sigil"
    changed.write_text(OURS + "\n# changed\n")
    monkeypatch.setattr(docker_engine, "NGINX_TEMPLATE", changed)
    assert derived_tag(base, "1.25.0") != before
    assert before.startswith("dokku-powersync/powersync-service:1.25.0-bbbbbbbbbbbb-")
