"""The source database: the one place that writes SQL, sent through `dokku postgres:connect`.

Names and values never enter SQL text by concatenation: each statement reads them from psql
variables (`:'name'` for a literal, `:"name"` for an identifier), which psql quotes itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from powersync_plugin.adapters.dokku import Dokku, DokkuCommandFailed
from powersync_plugin.core.names import slot_name_pattern


def psql_variables(**values: str) -> str:
    """`\\set` lines: inside single quotes psql undoes `\\\\`, `\\'` and `\\n`, so any text survives."""
    lines = []
    for name, value in values.items():
        escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
        lines.append(f"\\set {name} '{escaped}'\n")
    return "".join(lines)


@dataclass(frozen=True)
class Leftover:
    """Something of an instance's left on its source server: what, why, and the command that
    removes it. `unproven`: left on purpose, as it may belong to another deployment."""

    what: str
    reason: str
    command: str
    unproven: bool = False

    def __str__(self) -> str:
        return f"{self.what}: {self.reason}; {'if it is' if self.unproven else 'remove it with'}: {self.command}"


@dataclass(frozen=True)
class Slot:
    name: str
    active: bool
    retained_wal: str = ""


class SourceDatabase:
    def __init__(self, dokku: Dokku):
        self.dokku = dokku

    def rows(self, service: str, sql: str, **variables: str) -> list[list[str]]:
        return self.dokku.postgres_query(service, psql_variables(**variables) + sql + "\n")

    def value(self, service: str, sql: str, **variables: str) -> str:
        rows = self.rows(service, sql, **variables)
        return rows[0][0].strip() if rows and rows[0] else ""

    # --- prerequisites -----------------------------------------------------------------
    def wal_level(self, service: str) -> str:
        return self.value(service, "SHOW wal_level;")

    def has_publication(self, service: str) -> bool:
        return self.value(service, "SELECT count(*) FROM pg_publication WHERE pubname = 'powersync';") == "1"

    def set_wal_level_logical(self, service: str) -> None:
        self.rows(service, "ALTER SYSTEM SET wal_level = logical;")

    # --- replication slots ---------------------------------------------------------------
    def instance_slots(self, service: str, prefix: str) -> list[Slot]:
        """The slots PowerSync made under `prefix`, matched exactly (`<prefix><id>_<4 hex>`)."""
        rows = self.rows(
            service,
            "SELECT slot_name, active, coalesce(pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), '-') "
            "FROM pg_replication_slots WHERE slot_name ~ :'pattern' ORDER BY slot_name;",
            pattern=slot_name_pattern(prefix),
        )
        return [Slot(row[0], row[1] == "t", row[2]) for row in rows if len(row) == 3]

    def drop_slot(self, service: str, slot: str) -> Optional[str]:
        """Drop one slot; None when it is gone, else Postgres's reason (an active slot is refused)."""
        sql = "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = :'slot';"
        return self._attempt(service, sql, slot=slot)

    # --- storage database ----------------------------------------------------------------
    def database_exists(self, service: str, database: str) -> bool:
        return self.value(service, "SELECT count(*) FROM pg_database WHERE datname = :'database';", database=database) == "1"

    def create_database(self, service: str, database: str) -> None:
        self.rows(service, 'CREATE DATABASE :"database";', database=database)

    def drop_database(self, service: str, database: str) -> Optional[str]:
        """Drop a storage database (its connections too); None when it is gone, else the reason."""
        return self._attempt(service, 'DROP DATABASE IF EXISTS :"database" WITH (FORCE);', database=database)

    def _attempt(self, service: str, sql: str, **variables: str) -> Optional[str]:
        """Run a statement whose failure is reported, not raised: None, or Postgres's reason."""
        try:
            self.rows(service, sql, **variables)
            return None
        except DokkuCommandFailed as exc:
            return _postgres_error(exc.output) or str(exc).splitlines()[0]


def _postgres_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if "ERROR:" in line]
    return lines[-1].split("ERROR:", 1)[1].strip() if lines else ""


def drop_slot_command(service: str, slot: str) -> str:
    return f"echo \"SELECT pg_drop_replication_slot('{slot}');\" | dokku postgres:connect {service}"


def list_slots_command(service: str, prefix: str) -> str:
    pattern = slot_name_pattern(prefix)
    return f"echo \"SELECT slot_name, active FROM pg_replication_slots WHERE slot_name ~ '{pattern}';\" | dokku postgres:connect {service}"


def drop_schema_command(service: str) -> str:
    return f"echo 'DROP SCHEMA IF EXISTS powersync CASCADE;' | dokku postgres:connect {service}"


def drop_database_command(service: str, database: str) -> str:
    return f"echo 'DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE);' | dokku postgres:connect {service}"
