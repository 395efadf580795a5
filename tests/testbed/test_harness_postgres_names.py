"""The harness's dokku-postgres service names, DSN host and ``postgres:app-links`` against
dokku-postgres 1.48.0 (``common-functions``: ``is_valid_service_name`` allows ``[A-Za-z0-9_-]+``,
``service_dns_hostname`` is ``dokku.postgres.SVC`` with ``.`` and ``_`` turned into ``-``,
``write_database_name`` turns ``.`` and ``-`` into ``_``; ``service_app_links`` prints one
linked service per line, nothing else)."""
from __future__ import annotations

import uuid


def test_service_names_with_underscore_and_upper_case(harness):
    h = harness
    tag = uuid.uuid4().hex[:6]
    under, upper, app = f"acce_u_{tag}", f"Acce_U{tag}", h.unique("tps")
    for svc in (under, upper):
        r = h.run("postgres:create", svc)
        assert r.returncode == 0, r.stdout + r.stderr
    dsn = h.run("postgres:info", under, "--dsn").stdout.strip()
    assert dsn.endswith(f"@dokku-postgres-acce-u-{tag}:5432/{under}")
    dsn = h.run("postgres:info", upper, "--dsn").stdout.strip()
    assert dsn.endswith(f"@dokku-postgres-Acce-U{tag}:5432/{upper}")
    assert h.run("apps:create", app).returncode == 0
    assert h.run("postgres:app-links", app).stdout == ""
    for svc in (under, upper):
        assert h.run("postgres:link", svc, app, "--no-restart").returncode == 0
    # one service per line, no header (the real command has no --quiet flag and needs none)
    assert sorted(h.run("postgres:app-links", app).stdout.splitlines()) == sorted([under, upper])
    assert h.run("postgres:connect", under, input="SELECT current_database();\n").stdout.splitlines()[2] == f" {under}"


def test_service_names_dokku_postgres_refuses(harness):
    h = harness
    rule = " !     Please specify a valid name for the service. Valid characters are: [A-Za-z0-9_]+\n"
    for bad in ("has.dot", "has space", "slash/x"):
        r = h.run("postgres:create", bad)
        assert (r.returncode, r.stderr) == (1, rule), bad
    missing = h.run("postgres:app-links", h.unique("nope"))
    assert missing.returncode == 20 and "does not exist" in missing.stderr
