"""Issue 11: every statement source_database.py sends through `postgres:connect` takes names and
values as psql variables, so hostile names (quotes, backslashes, `%`, `_`, semicolons, comment
markers) touch exactly the object they name, on the harness's real Postgres."""
from __future__ import annotations

import pytest

from powersync_plugin.adapters.dokku import Dokku
from powersync_plugin.core.errors import DomainError
from powersync_plugin.redact import Redactor
from powersync_plugin.source_database import SourceDatabase

HOSTILE_DATABASES = [
    'x"; DROP DATABASE keep_me; --',
    "a'b\\c; DROP DATABASE keep_me;",
    "pct%_ \\' \"\" $$ :'x'",
]


@pytest.fixture
def source_db(harness, monkeypatch):
    for key, value in harness.env.items():
        monkeypatch.setenv(key, value)
    return SourceDatabase(Dokku(Redactor()))


def databases(h, service: str) -> set[str]:
    out = h.run("postgres:connect", service, input="\\pset tuples_only on\nSELECT datname FROM pg_database;\n").stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def slots(h, service: str) -> set[str]:
    out = h.run("postgres:connect", service, input="\\pset tuples_only on\nSELECT slot_name FROM pg_replication_slots;\n").stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def test_hostile_database_names_touch_only_themselves(harness, source, source_db):
    h = harness
    assert h.run("postgres:connect", source, input="CREATE DATABASE keep_me;\n").returncode == 0
    try:
        before = databases(h, source)
        for name in HOSTILE_DATABASES:
            assert not source_db.database_exists(source, name)
            source_db.create_database(source, name)
            assert source_db.database_exists(source, name)
            assert databases(h, source) == before | {name}
            assert source_db.drop_database(source, name) is None
            assert not source_db.database_exists(source, name)
            assert databases(h, source) == before
    finally:
        h.run("postgres:connect", source, input="DROP DATABASE IF EXISTS keep_me;\n")


def test_hostile_slot_names_and_prefixes_match_nothing_extra(harness, source, source_db):
    h = harness
    made = ["ps_a_1_abcd", "psxa_1_abcd", "ps_a_x_2_beef", "ps_ab_3_cafe"]
    setup = "".join(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput');\n" for slot in made)
    assert h.run("postgres:connect", source, input=setup).returncode == 0
    try:
        before = slots(h, source)
        # `_` is a literal in the pattern, not LIKE's any-character: only ps_a_<n>_<hex>.
        assert [slot.name for slot in source_db.instance_slots(source, "ps_a_")] == ["ps_a_1_abcd"]
        # A prefix is checked before any SQL is sent: quotes, `%`, `;` never reach Postgres.
        for prefix in ("ps_a_'; DROP DATABASE keep_me; --", "ps_%", "PS_A_", "ps\\_a"):
            with pytest.raises(DomainError):
                source_db.instance_slots(source, prefix)
        # A hostile slot name is a value: no match, no error, nothing dropped.
        for name in ("x'; SELECT pg_drop_replication_slot('psxa_1_abcd'); --", "%", "ps\\_a\\_1\\_abcd", "ps_a_%"):
            assert source_db.drop_slot(source, name) is None
        assert slots(h, source) == before
        assert source_db.drop_slot(source, "ps_a_1_abcd") is None
        assert slots(h, source) == before - {"ps_a_1_abcd"}
    finally:
        cleanup = "".join(
            f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}';\n" for slot in made
        )
        h.run("postgres:connect", source, input=cleanup)
