"""``certs:*`` (Dokku's core certs plugin), the ``ports`` plugin's certificate triggers, and
``letsencrypt:*`` (the dokku-letsencrypt community plugin): what they do to an app's files, ports
map and triggers.

Sources (read, not copied): dokku/dokku v0.38.27 ``plugins/certs`` (``subcommands/add``,
``subcommands/remove``, ``internal-functions``, ``functions``, ``report.go``) and
``plugins/ports`` (``triggers.go``, ``functions.go``); dokku/dokku-letsencrypt master
(``command-functions``, ``internal-functions``, ``post-domains-update``).

- ``certs:add APP CRT KEY`` (both files readable, else `` !     CRT|KEY file specified not found,
  please check file paths``) or ``certs:add APP < tarball`` (stdin not a TTY: exactly one ``*.crt``
  and one ``*.key`` outside hidden paths, else ``Tar archive is missing .crt file`` / ``contains
  more than one .crt file`` and the same for ``.key``; a TTY and no files: ``Tar archive containing
  server.crt and server.key expected on stdin``) copies them to ``$DOKKU_ROOT/APP/tls/server.crt|key``
  and fires ``post-certs-update APP`` then ``post-domains-update APP`` (no action argument). No
  output of its own.
- ``certs:remove APP``: `` !     An app-specific SSL endpoint is not defined`` without ``tls/``;
  else ``-----> Removing SSL endpoint from APP``, ``tls/`` removed, ``post-certs-remove APP`` then
  ``post-domains-update APP``.
- ``certs:report APP [--format json|--ssl-<key>]``: ``ssl-dir``, ``ssl-enabled`` (``true`` iff
  ``tls/server.crt`` and ``tls/server.key`` exist, whoever put them there), ``ssl-hostnames``,
  ``ssl-expires-at``, ``ssl-starts-at``, ``ssl-issuer``, ``ssl-subject``, ``ssl-verified`` (read
  with ``openssl`` as Dokku does; ``self signed`` unless ``openssl verify`` says OK); JSON keys
  without the ``ssl-`` prefix.
- ``ports``' ``post-certs-update APP``: if the map has no ``https:443:*``, add ``https:443:C`` for
  every ``http:80:C`` of the map (none added when the map is empty). ``post-certs-remove APP``:
  drop every ``https:443:*`` of the map. And with a certificate, the *detected* map (used while
  the map is empty) gains ``https:443:C`` per ``http:80:C``, or turns its http entries into https
  when there is none (``getDetectedPortMaps``). The ``proxy-port`` properties are not modelled.
- ``letsencrypt:enable [--force] APP``: needs a domain (`` !     No domains detected for APP``
  as a warning, rc 1); ``=====> Enabling letsencrypt for APP``; when the current Let's Encrypt
  certificate is active and covers the same domains and ``--force`` is not given: ``-----> Certificate
  is still valid for APP, skipping certificate request`` and nothing else. Otherwise it makes sure
  the ports map (or the detected one) has ``http:80:*`` (else ``ports:add APP http:80:C`` with
  the first http, then https, container port; none: warnings and rc 1), "retrieves" a
  certificate (here: self-signed with ``openssl`` for the app's domains, stored under
  ``letsencrypt/certs/<hash>/certificates/``), installs it with ``certs:add APP PEM KEY`` (so the
  certs and ports triggers above fire) and copies it to ``tls/server.letsencrypt.crt``. The
  e-mail check, the ACME proxy and nginx restarts are not modelled. ``letsencrypt_enables`` in the
  app state counts the command's runs.
- ``letsencrypt:active APP``: ``true`` iff certs are enabled and ``tls/server.crt`` is the Let's
  Encrypt certificate (same sha1).
- ``letsencrypt:disable APP``: removes ``letsencrypt/`` and ``tls/``, fires ``post-certs-remove
  APP`` and ``post-domains-update APP``.
Not modelled: ``certs:generate``/``certs:show``/``certs:update``, ``certs-force``, renewals, and
dokku-letsencrypt's own ``post-domains-update`` warning on ``domains:add|set`` (`` !     Please
run dokku letsencrypt:enable to add https support to the new domain``; the transcripts' host
had no letsencrypt plugin, and their ``domains:set`` output is reproduced as recorded).
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from . import state, triggers
from .output import fail, info1, info2, no_app, out, parse_flags, report, verbose, warn
from .paths import layout


def tls_dir(app: str) -> Path:
    return layout().app_dir(app) / "tls"


def ssl_enabled(app: str) -> bool:
    d = tls_dir(app)
    return (d / "server.crt").exists() and (d / "server.key").exists()


def _install(app: str, crt: Path, key: Path) -> int:
    d = tls_dir(app)
    d.mkdir(parents=True, exist_ok=True)
    for name in ("server.crt", "server.key"):
        (d / name).unlink(missing_ok=True)
    shutil.copyfile(crt, d / "server.crt")
    shutil.copyfile(key, d / "server.key")
    os.chmod(d, 0o750)
    os.chmod(d / "server.crt", 0o640)
    os.chmod(d / "server.key", 0o640)
    triggers.fire("post-certs-update", [app])
    triggers.fire("post-domains-update", [app])
    return 0


def certs_add(args):
    _, pos = parse_flags("certs:add", args)
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    crt, key = (pos[1:3] + [None, None])[:2]
    if crt and key:
        if not os.access(crt, os.R_OK):
            fail("CRT file specified not found, please check file paths")
        if not os.access(key, os.R_OK):
            fail("KEY file specified not found, please check file paths")
        return _install(app, Path(crt), Path(key))
    if sys.stdin.isatty():
        fail("Tar archive containing server.crt and server.key expected on stdin")
    with tempfile.TemporaryDirectory(prefix="dokku-certs-") as work:
        try:
            with tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read())) as tar:
                for member in tar.getmembers():  # regular files only, never outside `work`
                    parts = Path(member.name).parts
                    if not member.isfile() or member.name.startswith("/") or ".." in parts:
                        continue
                    target = Path(work, *parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tar.extractfile(member).read())
        except (tarfile.TarError, OSError) as exc:
            fail(f"Unable to extract the tar archive from certs:add: {exc}")
        files = [p for p in Path(work).rglob("*") if p.is_file()
                 and not any(part.startswith(".") for part in p.relative_to(work).parts)]
        found = {}
        for suffix in (".crt", ".key"):
            matches = [p for p in files if p.name.endswith(suffix)]
            if not matches:
                fail(f"Tar archive is missing {suffix} file")
            if len(matches) > 1:
                fail(f"Tar archive contains more than one {suffix} file")
            found[suffix] = matches[0]
        return _install(app, found[".crt"], found[".key"])


def certs_remove(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    if not tls_dir(app).is_dir():
        fail("An app-specific SSL endpoint is not defined")
    info1(f"Removing SSL endpoint from {app}")
    shutil.rmtree(tls_dir(app))
    triggers.fire("post-certs-remove", [app])
    triggers.fire("post-domains-update", [app])
    return 0


def _openssl(*args: str) -> str:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else ""


def _cert_text(crt: Path) -> str:
    return _openssl("x509", "-in", str(crt), "-noout", "-text")


def _field(text: str, marker: str, sep: str) -> str:
    for line in text.splitlines():
        if marker in line:
            return line.split(sep, 1)[1].strip() if sep in line else ""
    return ""


def _hostnames(crt: Path, text: str) -> list[str]:
    names = set()
    subject = _openssl("x509", "-in", str(crt), "-noout", "-subject", "-nameopt", "RFC2253")
    for rdn in subject.replace("subject=", "").replace("/", ",").split(","):
        k, _, v = rdn.partition("=")
        if k.strip() == "CN" and v.strip():
            names.add(v.strip())
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "509v3 Subject Alternative Name:" in line and i + 1 < len(lines):
            names.update(n.strip().replace("DNS:", "") for n in lines[i + 1].split(",") if n.strip())
    return sorted(names)


def certs_report(args):
    if not args or args[0].startswith("--"):
        no_app()
    app = state.require_app(args[0])
    crt = tls_dir(app) / "server.crt"
    on = ssl_enabled(app)
    text = _cert_text(crt) if on else ""
    verified = ""
    if on:
        res = _openssl("verify", "-verbose", "-purpose", "sslserver", str(crt)).strip().splitlines()
        verified = ("verified by a certificate authority" if res and res[-1].split(":")[-1].strip() == "OK"
                    else "self signed")
    subject = _openssl("x509", "-in", str(crt), "-noout", "-subject", "-nameopt", "compat") if on else ""
    subject = subject.strip().removeprefix("subject=").strip().removeprefix("/").replace("/", "; ")
    base = {
        "dir": str(tls_dir(app)), "enabled": "true" if on else "false",
        "hostnames": " ".join(_hostnames(crt, text)) if on else "",
        "expires-at": _field(text, "Not After :", " : "), "starts-at": _field(text, "Not Before:", ": "),
        "issuer": _field(text, "Issuer:", "Issuer: "), "subject": subject, "verified": verified,
    }
    rows = {f"ssl-{k}": v for k, v in base.items()}
    report(app, "ssl information", rows, base, args[1:])
    return 0


# ---- the ports plugin's certificate triggers ------------------------------------------------

def _with_https(maps: list[str]) -> list[str]:
    """Dokku's ``addPortMaps`` + ``setPortMaps``: appended, then sorted."""
    https = [f"https:443:{m.split(':')[2]}" for m in maps if m.startswith("http:80:")]
    seen, unique = set(), []
    for m in https:  # uniquePortMaps: one per scheme:host-port
        if "https:443" not in seen:
            seen.add("https:443")
            unique.append(m)
    return sorted(maps + unique)


@triggers.builtin("post-certs-update", "ports")
def _ports_post_certs_update(args):
    app = args[0]
    with state.edit_app(app) as data:
        maps = data["ports"]
        if not any(m.startswith("https:443:") for m in maps) and any(m.startswith("http:80:") for m in maps):
            data["ports"] = _with_https(maps)
    return 0


@triggers.builtin("post-certs-remove", "ports")
def _ports_post_certs_remove(args):
    app = args[0]
    with state.edit_app(app) as data:
        data["ports"] = [m for m in data["ports"] if not m.startswith("https:443:")]
    return 0


def detected_with_certs(app: str, detected: list[str]) -> list[str]:
    """``getDetectedPortMaps`` with a certificate: https on 443 next to each http on 80, or the
    http entries turned https when none listens on 80."""
    if not ssl_enabled(app):
        return detected
    https = [f"https:443:{m.split(':')[2]}" for m in detected if m.startswith("http:80:")]
    if https:
        return detected + https
    return ["https:" + m.split(":", 1)[1] if m.startswith("http:") else m for m in detected]


# ---- dokku-letsencrypt ---------------------------------------------------------------------

def _le_root(app: str) -> Path:
    return layout().app_dir(app) / "letsencrypt"


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest() if path.exists() else "not_found"


def le_active(app: str) -> bool:
    if not ssl_enabled(app):
        return False
    le_crt = tls_dir(app) / "server.letsencrypt.crt"
    return le_crt.exists() and _sha1(le_crt) == _sha1(tls_dir(app) / "server.crt")


def _ensure_http_port(app: str) -> bool:
    from .apps import detected_ports, ports_set
    maps = state.load_app(app)["ports"] or detected_ports(app)
    if any(m.startswith("http:80:") for m in maps):
        return True
    port = next((m.split(":")[2] for m in maps if m.startswith("http:")), None)
    port = port or next((m.split(":")[2] for m in maps if m.startswith("https:")), None)
    if port is None:
        warn(f"Cannot enable letsencrypt for {app}: no http or https proxy port mapping was found.")
        warn("  letsencrypt needs an http listener on port 80 to serve the ACME HTTP-01 challenge.")
        warn(f"  Add one with: dokku ports:add {app} http:80:<container-port>")
        return False
    info1(f"Adding http:80:{port} port mapping to {app} for ACME HTTP-01 challenge...")
    ports_set([app, f"http:80:{port}"], add=True)
    return True


def letsencrypt_enable(args):
    flags, pos = parse_flags("letsencrypt:enable", args, bools=("--force",))
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    with state.edit_app(app) as data:
        data["letsencrypt_enables"] = data.get("letsencrypt_enables", 0) + 1
    domains = state.load_app(app)["domains"]
    if not domains:
        warn(f"No domains detected for {app}")
        return 1
    info2(f"Enabling letsencrypt for {app}")
    config_hash = hashlib.sha1(" ".join(domains).encode()).hexdigest()[:16]
    current = _le_root(app) / "certs" / "current"
    if ("--force" not in flags and le_active(app) and current.is_symlink()
            and os.path.basename(os.readlink(current)) == config_hash):
        info1(f"Certificate is still valid for {app}, skipping certificate request")
        info1("Pass --force to letsencrypt:enable to request a new certificate anyway")
        return 0
    with state.edit_app(app) as data:
        data["letsencrypt"] = True  # the harness's record that the app asked for Let's Encrypt
    if not _ensure_http_port(app):
        return 1
    config_dir = _le_root(app) / "certs" / config_hash
    certs_dir = config_dir / "certificates"
    certs_dir.mkdir(parents=True, exist_ok=True)
    safe = domains[0].replace("*", "_")
    pem, key, crt = (certs_dir / f"{safe}.{ext}" for ext in ("pem", "key", "crt"))
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "90", "-subj", f"/CN={domains[0]}", "-addext",
         "subjectAltName=" + ",".join(f"DNS:{d}" for d in domains), "-keyout", str(key), "-out", str(crt)],
        capture_output=True, text=True)
    if made.returncode != 0:
        warn("Failed to setup letsencrypt")
        fail("Check log output for further information on failure")
    shutil.copyfile(crt, pem)
    info1("Installing let's encrypt certificates")
    current.unlink(missing_ok=True)
    current.symlink_to(config_dir)
    _install(app, pem, key)
    for name in ("server.letsencrypt.crt", "server.crt"):
        shutil.copyfile(crt, tls_dir(app) / name)
    info1("Done")
    return 0


def letsencrypt_disable(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    with state.edit_app(app) as data:
        data["letsencrypt"] = False
    info1("Disabling letsencrypt for app")
    verbose(f"Removing letsencrypt files for {app}")
    shutil.rmtree(_le_root(app), ignore_errors=True)
    verbose(f"Removing SSL endpoint from {app}")
    shutil.rmtree(tls_dir(app), ignore_errors=True)
    triggers.fire("post-certs-remove", [app])
    triggers.fire("post-domains-update", [app])
    info1("Done")
    return 0


def letsencrypt_active(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    out("true" if le_active(app) else "false")
    return 0


COMMANDS = {
    "certs:add": certs_add, "certs:remove": certs_remove, "certs:report": certs_report,
    "letsencrypt:enable": letsencrypt_enable, "letsencrypt:disable": letsencrypt_disable,
    "letsencrypt:active": letsencrypt_active,
}
