"""Dokku's nginx proxy (the ``nginx-vhosts`` core plugin of dokku/dokku v0.38.27) driving a real
nginx: Debian bookworm's nginx in a container (``dokku-powersync-test/nginx:bookworm``, built by
tests/images/build), started per harness by ``make_harness(proxy=True)`` / ``nginx:start``.

What is modelled, from ``plugins/nginx-vhosts`` (``core-post-extract``, ``functions``
``nginx_build_config`` / ``fn-nginx-vhosts-render-template`` /
``fn-nginx-vhosts-pre-validate-custom-template``, ``proxy-build-config``, ``post-*`` triggers):

- **Which template.** An app-supplied ``nginx.conf.sigil`` is copied at every build
  (``git:from-image``, ``ps:rebuild``, the rebuild after ``apps:rename``/``apps:clone``) from the
  source image's WORKDIR (path: the ``nginx-conf-sigil-path`` property, app then global, default
  ``nginx.conf.sigil``, always relative) to ``data/nginx-vhosts/app-APP/nginx.conf.sigil.<DOKKU_PID>``
  (or a ``.missing`` marker); that deploy's proxy build uses it and keeps it as
  ``app-APP/nginx.conf.sigil``, which later builds (``proxy:build-config``, ports, domains,
  certificates, restarts) use. An image without the file removes the kept copy. The property
  ``disable-custom-config true`` makes every build use the built-in template. With the proxy
  running, a custom template is pre-validated at extraction (rendered with a placeholder
  listener, ``nginx -t`` in Dokku's wrapper): failure aborts the build with Dokku's messages.
- **Rendering.** ``tests/harness/gotemplate.py`` renders Dokku's templates (verbatim copies in
  ``nginx_templates/``) with the variables ``fn-nginx-vhosts-render-template`` passes (property
  defaults from ``nginx_vhosts.go``; nginx 1.22.1, so ``HTTP2_DIRECTIVE_SUPPORTED=false``),
  then ``cat -s``; the result is ``$DOKKU_ROOT/APP/nginx.conf`` (and ``nginx.conf.d/`` is made).
  Listeners: ``IP.web.1:PORT.web.1`` of a deployed app; none (the template's ``return 502``) for
  an undeployed app with a port map. ``https`` mappings without a certificate are dropped with
  Dokku's warning.
- **When.** After each deploy's container switch (``Triggering early nginx proxy rebuild``),
  ``post-domains-update``, ``post-proxy-ports-update``, ``proxy:build-config``; ``apps:rename``
  clears NEW's config (``proxy-clear-config``), ``apps:destroy`` removes ``app-APP/`` and reloads
  (nginx keeps serving a destroyed app until a reload: ``include $DOKKU_ROOT/*/nginx.conf``).
  Each build ends with ``nginx -t`` and a reload (``nginx -s reload``) in the container; the
  harness then waits for the old workers to exit, so the next request meets the new config.
- **The host's nginx.** ``/etc/nginx/conf.d`` holds Dokku's ``dokku.conf`` (rendered from
  ``dokku.conf.sigil``), the 0.38 catch-all ``00-default-vhost.conf`` (unknown Host: connection
  closed, 444) and ``server_names_hash_bucket_size.conf``; Debian's default site is removed. The
  container mounts DOKKU_ROOT and ``data/nginx-vhosts`` read-only at the same paths, listens on
  80/443 published on 127.0.0.1 only (``Harness.proxy_url``), and reaches app containers at their
  bridge IPs as the host's nginx does. Requests from tests go only to the published ports.

Without ``proxy=True`` the harness is the transcripts' host (no nginx): none of this runs and
nothing prints (deploys cost no extra container). Not modelled: ``proxy:disable``, HSTS's
``nginx.conf.d/hsts.conf``, other proxy listen ports than 80/443, grpc, the ``nginx-app-template-
source`` trigger, access/error log commands.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import gotemplate, state, triggers
from .output import fail, info1, no_app, out, parse_flags, verbose, warn
from .paths import HARNESS_DIR, ROOT_LABEL, TEST_LABEL, chown_dokku, layout

TEMPLATES = HARNESS_DIR / "nginx_templates"
IMAGE = "dokku-powersync-test/nginx:bookworm"
NGINX_VERSION = "1.22.1"  # Debian bookworm's: before 1.25.1, so no standalone `http2 on;`
PROPERTIES = {  # nginx_vhosts.go Computed* defaults (4 KiB pages)
    "bind-address-ipv4": "", "bind-address-ipv6": "::", "client-body-timeout": "60s",
    "client-header-timeout": "60s", "client-max-body-size": "1m", "keepalive-timeout": "75s",
    "lingering-timeout": "5s", "proxy-connect-timeout": "60s", "proxy-read-timeout": "60s",
    "proxy-send-timeout": "60s", "send-timeout": "60s", "proxy-buffer-size": "4k", "proxy-buffering": "on",
    "proxy-buffers": "8 4k", "proxy-busy-buffers-size": "8k", "proxy-keepalive": "",
    "underscore-in-headers": "off", "x-forwarded-for-value": "$remote_addr",
    "x-forwarded-port-value": "$server_port", "x-forwarded-proto-value": "$scheme", "x-forwarded-ssl": "",
    "access-log-format": "", "disable-custom-config": "false", "nginx-conf-sigil-path": "nginx.conf.sigil",
}


# ---- state ----------------------------------------------------------------------------------

def vhosts_dir() -> Path:
    return layout().data / "nginx-vhosts"


def app_data(app: str) -> Path:
    return vhosts_dir() / f"app-{app}"


def _props_file(app: str | None) -> Path:
    return layout().config / "nginx" / ("--global.json" if app is None else f"{app}.json")


def prop(app: str | None, key: str, computed: bool = True) -> str:
    value = json.loads(_props_file(app).read_text()).get(key, "") if _props_file(app).exists() else ""
    if computed and not value and app is not None:
        value = prop(None, key, computed=False)
    if computed and not value:
        if key in ("access-log-path", "error-log-path"):
            return f"/var/log/nginx/{app}-{key.split('-')[0]}.log"
        value = PROPERTIES.get(key, "")
    return value


def _pid() -> str:
    # Dokku exports DOKKU_PID once per top-level command; nested calls inherit it
    return os.environ.setdefault("DOKKU_PID", str(os.getpid()))


def proxy_info() -> dict | None:
    path = vhosts_dir() / "harness-proxy.json"
    return json.loads(path.read_text()) if path.exists() else None


def _nginx(*args, check=False) -> subprocess.CompletedProcess:
    info = proxy_info()
    return subprocess.run(["docker", "exec", info["container"], "nginx", *args], capture_output=True, text=True,
                          check=check)


# ---- the host's nginx -----------------------------------------------------------------------

def container_name(root: Path) -> str:
    return "dokku-harness-nginx-" + hashlib.sha256(str(root).encode()).hexdigest()[:10]


def start_proxy() -> dict:
    """nginx:start: make /etc/nginx/conf.d as Dokku's install does, start nginx, publish 80/443."""
    lay = layout()
    if proxy_info():
        return proxy_info()
    confd = lay.nginx_confd
    conf = gotemplate.render((TEMPLATES / "dokku.conf.sigil").read_text(),
                             {"DOKKU_ROOT": str(lay.dokku_root), "NGINX_ROOT": "/etc/nginx"})
    (confd / "dokku.conf").write_text(_squeeze(conf))
    shutil.copy(TEMPLATES / "default-site.conf", confd / "00-default-vhost.conf")
    (confd / "server_names_hash_bucket_size.conf").write_text("server_names_hash_bucket_size 512;\n")
    errors = vhosts_dir() / "dokku-errors"
    errors.mkdir(parents=True, exist_ok=True)
    for code in ("400", "404", "500", "502"):
        (errors / f"{code}-error.html").write_text(f"<html><body>harness nginx error page {code}</body></html>\n")
    chown_dokku(vhosts_dir())
    name = container_name(lay.root)
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    run = subprocess.run(
        ["docker", "run", "-d", "--name", name, "--label", f"{TEST_LABEL}=1", "--label", f"{ROOT_LABEL}={lay.root}",
         "-p", "127.0.0.1::80", "-p", "127.0.0.1::443",
         "-v", f"{confd}:/etc/nginx/conf.d:ro", "-v", f"{lay.dokku_root}:{lay.dokku_root}:ro",
         "-v", f"{vhosts_dir()}:{vhosts_dir()}:ro", IMAGE], capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"Unable to start nginx: {run.stderr.strip()}")
    ports = {}
    for port in ("80", "443"):
        mapped = subprocess.run(["docker", "port", name, f"{port}/tcp"], capture_output=True, text=True).stdout
        ports[port] = int(next(line for line in mapped.split("\n") if line.startswith("127.0.0.1:")).rsplit(":", 1)[1])
    info = {"container": name, "ports": ports}
    (vhosts_dir() / "harness-proxy.json").write_text(json.dumps(info))
    return info


def reload_proxy() -> int:
    """validate_nginx && restart_nginx: ``nginx -t`` (its output on failure), then a reload."""
    if not proxy_info():
        return 0
    test = _nginx("-t")
    if test.returncode != 0:
        out(test.stderr.rstrip())
        return test.returncode
    # `nginx -s reload` returns at once and the old workers keep accepting for a moment; wait
    # until they are gone so a request right after a deploy meets the new config (on a host it
    # may still meet the old one for some milliseconds)
    script = ('old=$(grep -l "^nginx: worker" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); '
              'nginx -s reload || exit $?; i=0; while [ $i -lt 100 ]; do alive=; '
              'for p in $old; do [ -e /proc/$p ] && alive=1; done; [ -z "$alive" ] && exit 0; '
              'sleep 0.05; i=$((i+1)); done')
    return subprocess.run(["docker", "exec", proxy_info()["container"], "sh", "-c", script],
                          capture_output=True, text=True).returncode


# ---- templates ------------------------------------------------------------------------------

def post_extract(app: str, source_image: str) -> None:
    """core-post-extract (fn-nginx-vhosts-copy-from-image + pre-validation)."""
    from .deploy import copy_from_image  # deploy imports this module
    if not proxy_info():
        return  # the transcripts' host: no nginx
    d = app_data(app)
    d.mkdir(parents=True, exist_ok=True)
    for stale in d.glob("nginx.conf.sigil.*"):
        stale.unlink()
    data = copy_from_image(source_image, prop(app, "nginx-conf-sigil-path"))
    pid_file = d / f"nginx.conf.sigil.{_pid()}"
    if data is None:
        pid_file.with_name(pid_file.name + ".missing").touch()
    else:
        pid_file.write_bytes(data)
    chown_dokku(vhosts_dir())
    if data is None or prop(app, "disable-custom-config") == "true":
        return
    info1("Pre-validating custom nginx.conf.sigil")
    try:
        rendered = _render(app, data.decode(), pre_validate=True)
    except gotemplate.TemplateError as exc:
        warn("Failed to render custom nginx.conf.sigil. Contents below...", stdout=True)
        out(data.decode())
        out(f"sigil: {exc}")
        fail("Custom nginx.conf.sigil failed to render via sigil", stdout=True)
    ok, output = _validate_standalone(rendered)
    if not ok:
        warn("Failed to validate custom nginx.conf.sigil. Rendered output below...", stdout=True)
        out(rendered)
        out(output)
        fail("Custom nginx.conf.sigil failed nginx -t validation", stdout=True)


def _validate_standalone(rendered: str) -> tuple[bool, str]:
    """nginx -t on Dokku's validate.conf.sigil wrapper around one rendered config."""
    work = Path(tempfile.mkdtemp(prefix="pre-validate-nginx.", dir=vhosts_dir()))
    try:
        (work / "nginx.conf").write_text(rendered)
        wrapper = gotemplate.render((TEMPLATES / "validate.conf.sigil").read_text(),
                                    {"NGINX_CONF": str(work / "nginx.conf")})
        (work / "wrapper.conf").write_text(_squeeze(wrapper))
        os.chmod(work, 0o755)
        res = _nginx("-t", "-c", str(work / "wrapper.conf"))
        return res.returncode == 0, res.stderr.strip()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _template(app: str) -> tuple[str, str]:
    """(template text, source) as nginx_build_config / get_custom_nginx_template choose it."""
    d = app_data(app)
    builtin = ((TEMPLATES / "nginx.conf.sigil").read_text(), "built-in")
    if prop(app, "disable-custom-config") == "true" or (d / f"nginx.conf.sigil.{_pid()}.missing").exists():
        return builtin
    for candidate in (d / f"nginx.conf.sigil.{_pid()}", d / "nginx.conf.sigil"):
        if candidate.exists():
            return candidate.read_text(), "app-supplied"
    return builtin


def _port_map(app: str, *, warn_dropped: bool = False) -> list[str]:
    from .apps import detected_ports
    maps = state.load_app(app)["ports"] or detected_ports(app)
    kept = []
    for mapping in maps:
        if mapping.startswith("https:") and not _has_tls(app):
            if warn_dropped:
                warn(f"Ignoring detected https port mapping without an accompanying ssl certificate ({mapping})",
                     stdout=True)
            continue
        kept.append(mapping)
    return kept


def _listeners(app: str) -> str:
    from .deploy import current_container, is_deployed, web_listener
    if not is_deployed(app) or not current_container(app):
        return ""
    return web_listener(app)


def _render(app: str, template: str, *, pre_validate: bool = False) -> str:
    lay = layout()
    data = state.load_app(app)
    maps = _port_map(app)
    upstream = []
    for mapping in maps:
        port = mapping.split(":")[2]
        if port not in upstream:
            upstream.append(port)
    tls = _has_tls(app)
    domains = data["domains"] if data["vhost_enabled"] else []
    listeners = "127.0.0.1:5000" if pre_validate else _listeners(app)
    values = {
        "APP": app, "DOKKU_ROOT": str(lay.dokku_root), "DOKKU_LIB_ROOT": str(lay.lib),
        "NOSSL_SERVER_NAME": " ".join(domains), "DOKKU_APP_LISTENERS": listeners, "PASSED_LISTEN_IP_PORT": "",
        "SPDY_SUPPORTED": "false", "TLS13_SUPPORTED": "true", "HTTP2_SUPPORTED": "true", "NGINX_LOG_ROOT": "/var/log/nginx",
        "NGINX_ACCESS_LOG_FORMAT": prop(app, "access-log-format"), "NGINX_ACCESS_LOG_PATH": prop(app, "access-log-path"),
        "NGINX_ERROR_LOG_PATH": prop(app, "error-log-path"), "NGINX_BIND_ADDRESS_IP4": prop(app, "bind-address-ipv4"),
        "NGINX_BIND_ADDRESS_IP6": prop(app, "bind-address-ipv6"), "HTTP2_DIRECTIVE_SUPPORTED": "false",
        "HTTP2_PUSH_SUPPORTED": "true", "GRPC_SUPPORTED": "true", "DOKKU_APP_LISTEN_PORT": "", "DOKKU_APP_LISTEN_IP": "",
        "APP_SSL_PATH": str(lay.app_dir(app) / "tls"), "SSL_INUSE": "true" if tls else "",
        "SSL_SERVER_NAME": "", "NGINX_PORT": _proxy_port(maps, "http", "80"), "NGINX_SSL_PORT": _proxy_port(maps, "https", "443"),
        "PROXY_PORT": _proxy_port(maps, "http", "80"), "PROXY_SSL_PORT": _proxy_port(maps, "https", "443"),
        "PROXY_PORT_MAP": " ".join(maps), "PROXY_UPSTREAM_PORTS": " ".join(upstream),
        "PROXY_X_FORWARDED_FOR": prop(app, "x-forwarded-for-value"),
        "PROXY_X_FORWARDED_PORT": prop(app, "x-forwarded-port-value"),
        "PROXY_X_FORWARDED_PROTO": prop(app, "x-forwarded-proto-value"), "PROXY_X_FORWARDED_SSL": prop(app, "x-forwarded-ssl"),
        "DOKKU_APP_WEB_LISTENERS": listeners,
    }
    for key in ("client-body-timeout", "client-header-timeout", "client-max-body-size", "keepalive-timeout",
                "lingering-timeout", "proxy-connect-timeout", "proxy-read-timeout", "proxy-send-timeout",
                "send-timeout", "proxy-buffer-size", "proxy-buffering", "proxy-buffers", "proxy-busy-buffers-size",
                "proxy-keepalive"):
        values[key.upper().replace("-", "_")] = prop(app, key)
    values["NGINX_UNDERSCORE_IN_HEADERS"] = prop(app, "underscore-in-headers")
    if listeners and not pre_validate:  # config_export app: the app's env is visible to the template
        values = {**state.get_config(app), **values}
    return _squeeze(gotemplate.render(template, values))


def _has_tls(app: str) -> bool:
    return (layout().app_dir(app) / "tls" / "server.crt").exists()


def _proxy_port(maps: list[str], scheme: str, default: str) -> str:
    for mapping in maps:
        if mapping.startswith(scheme + ":"):
            return mapping.split(":")[1]
    return default


def _squeeze(text: str) -> str:
    """``| cat -s``: runs of empty lines become one (lines holding spaces are not empty)."""
    return re.sub(r"(?:^|(?<=\n))\n{2,}", "\n", text)


def build_config(app: str) -> int:
    """nginx_build_config (+ proxy-build-config's keeping of the extracted template)."""
    if not proxy_info() or not state.app_exists(app):
        return 0
    maps = _port_map(app, warn_dropped=True)
    listeners = _listeners(app)
    if not listeners and not maps:
        return 0
    template, source = _template(app)
    data = state.load_app(app)
    for vhost in sorted(set(data["domains"] if data["vhost_enabled"] else [])):
        out(f"-----> Configuring {vhost}...(using {source} template)")
    try:
        rendered = _render(app, template)
    except gotemplate.TemplateError as exc:
        fail(f"sigil: {exc}", stdout=True)
    info1(f"Creating {'https' if _has_tls(app) else 'http'} nginx.conf")
    app_dir = layout().app_dir(app)
    (app_dir / "nginx.conf.d").mkdir(exist_ok=True)
    (app_dir / "nginx.conf").write_text(rendered)
    chown_dokku(app_dir / "nginx.conf.d")
    d = app_data(app)
    pid_file = d / f"nginx.conf.sigil.{_pid()}"
    if listeners and pid_file.exists():
        os.replace(pid_file, d / "nginx.conf.sigil")
    if listeners and pid_file.with_name(pid_file.name + ".missing").exists():
        pid_file.with_name(pid_file.name + ".missing").unlink()
        (d / "nginx.conf.sigil").unlink(missing_ok=True)
    verbose("Reloading nginx")
    return reload_proxy()


def clear_config(app: str) -> None:
    (layout().app_dir(app) / "nginx.conf").unlink(missing_ok=True)
    reload_proxy()


# ---- triggers -------------------------------------------------------------------------------

@triggers.builtin("post-domains-update", "nginx-vhosts")
@triggers.builtin("post-proxy-ports-update", "nginx-vhosts")
def _rebuild_trigger(args):
    return build_config(args[0]) if args else 0


@triggers.builtin("post-app-rename-setup", "nginx-vhosts")
def _rename_setup(args):
    old, new = args[0], args[1]
    if _props_file(old).exists():
        shutil.copy(_props_file(old), _props_file(new))
        _props_file(old).unlink()
    clear_config(new)
    return 0


@triggers.builtin("post-app-clone-setup", "nginx-vhosts")
def _clone_setup(args):
    old, new = args[0], args[1]
    if _props_file(old).exists():
        shutil.copy(_props_file(old), _props_file(new))
    (layout().app_dir(new) / "nginx.conf").unlink(missing_ok=True)
    return 0


@triggers.builtin("post-delete", "nginx-vhosts")
def _post_delete(args):
    _props_file(args[0]).unlink(missing_ok=True)
    reload_proxy()
    shutil.rmtree(app_data(args[0]), ignore_errors=True)
    return 0


# ---- commands -------------------------------------------------------------------------------

def nginx_start(args):
    start_proxy()
    for app in state.list_apps():
        build_config(app)
    return 0


def nginx_show_config(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    path = layout().app_dir(app) / "nginx.conf"
    if not path.exists():
        fail(f"No nginx.conf exists for {app}")
    out(path.read_text().rstrip("\n"))
    return 0


def nginx_set(args):
    flags, pos = parse_flags("nginx:set", args, bools=("--global",))
    if not flags.get("--global"):
        if not pos:
            no_app()
        pos[0] = state.require_app(pos[0])
    app = None if flags.get("--global") else pos.pop(0)
    if not pos:
        fail("No property specified")
    key, value = pos[0], " ".join(pos[1:])
    path = _props_file(app)
    path.parent.mkdir(parents=True, exist_ok=True)
    props = json.loads(path.read_text()) if path.exists() else {}
    if value:
        info1(f"Setting {key} to {value}")
        props[key] = value
    else:
        info1(f"Unsetting {key}")
        props.pop(key, None)
    path.write_text(json.dumps(props))
    return 0


def proxy_build_config(args):
    flags, pos = parse_flags("proxy:build-config", args, bools=("--all", "--parallel"))
    apps = state.list_apps() if flags.get("--all") else [state.require_app(pos[0] if pos else None)]
    return max([build_config(app) for app in apps] or [0])


def proxy_clear_config(args):
    _, pos = parse_flags("proxy:clear-config", args)
    clear_config(state.require_app(pos[0] if pos else None))
    return 0


COMMANDS = {
    "nginx:start": nginx_start, "nginx:show-config": nginx_show_config, "nginx:set": nginx_set,
    "proxy:build-config": proxy_build_config, "proxy:clear-config": proxy_clear_config,
}
