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

    # --- the instance's own role (link --source-role dedicated) ----------------------------
    def role_exists(self, service: str, role: str) -> bool:
        return self.value(service, "SELECT count(*) FROM pg_roles WHERE rolname = :'role';", role=role) == "1"

    def ensure_role(self, service: str, role: str, verifier: str) -> None:
        """The role with exactly LOGIN REPLICATION (a role left by an interrupted link is reset to
        that). `verifier` is a SCRAM-SHA-256 verifier: the password never reaches the server."""
        self.rows(
            service,
            "SELECT format('CREATE ROLE %I', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \\gexec\n"
            'ALTER ROLE :"role" WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT '
            "PASSWORD :'verifier';",
            role=role, verifier=verifier,
        )

    def grant_published(self, service: str, role: str) -> None:
        """SELECT on the tables of the `powersync` publication (and USAGE on their schemas). A
        publication FOR ALL TABLES or FOR TABLES IN SCHEMA publishes tables made later at once, so
        there the role also gets default privileges on what the connecting superuser (the
        backend's DSN user) creates later; a FOR TABLE list changes only by ALTER PUBLICATION,
        after which link or rotate grants again."""
        published = "FROM pg_publication_tables WHERE pubname = 'powersync'"
        all_tables = "FROM pg_publication WHERE pubname = 'powersync' AND puballtables"
        in_schema = (
            "FROM pg_publication_namespace pn JOIN pg_publication p ON p.oid = pn.pnpubid "
            "JOIN pg_namespace n ON n.oid = pn.pnnspid WHERE p.pubname = 'powersync'"
        )
        self.rows(
            service,
            f"SELECT DISTINCT format('GRANT USAGE ON SCHEMA %I TO %I', schemaname, :'role') {published} \\gexec\n"
            f"SELECT format('GRANT SELECT ON TABLE %I.%I TO %I', schemaname, tablename, :'role') {published} \\gexec\n"
            f"SELECT format('ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO %I', :'role') {all_tables}\n"
            f"UNION ALL SELECT format('ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO %I', :'role') {all_tables} \\gexec\n"
            # FOR TABLES IN SCHEMA (and its catalog) exist from Postgres 15
            "SELECT current_setting('server_version_num')::int >= 150000 AS schema_publications \\gset\n"
            "\\if :schema_publications\n"
            f"SELECT format('GRANT USAGE ON SCHEMA %I TO %I', n.nspname, :'role') {in_schema}\n"
            f"UNION ALL SELECT format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I', n.nspname, :'role') "
            f"{in_schema} \\gexec\n"
            "\\endif",
            role=role,
        )

    def hand_storage_to(self, service: str, role: str, database: Optional[str]) -> None:
        """Make the role the owner of its storage: the database (when separate) and the `powersync`
        schema with what is in it (made by a previous link, or by hand before adoption)."""
        script = ""
        if database:
            script = 'ALTER DATABASE :"database" OWNER TO :"role";\n\\connect :"database"\n'
        script += (
            'CREATE SCHEMA IF NOT EXISTS powersync AUTHORIZATION :"role";\n'
            'ALTER SCHEMA powersync OWNER TO :"role";\n'
            "SELECT format('ALTER TABLE powersync.%I OWNER TO %I', c.relname, :'role') FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'powersync' AND (c.relkind IN ('r', 'p', 'v', 'm') "
            "OR (c.relkind = 'S' AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))) \\gexec"
        )
        self.rows(service, script, role=role, database=database or "")

    def drop_role(self, service: str, role: str, database: Optional[str]) -> Optional[str]:
        """Give what the role owns back to the service's superuser (kept, as under the default
        role), drop its grants and default privileges, then the role; None when it is gone, else
        Postgres's reason. In the storage database first (when separate and still there), then
        in the source database."""
        script = "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') AS role_exists \\gset\n\\if :role_exists\n"
        give_back = 'REASSIGN OWNED BY :"role" TO CURRENT_USER;\nDROP OWNED BY :"role";\n'
        if database:
            script += (
                "\\set source :DBNAME\n"
                "SELECT EXISTS (SELECT FROM pg_database WHERE datname = :'database') AS storage_exists \\gset\n"
                '\\if :storage_exists\n\\connect :"database"\n' + give_back + '\\connect :"source"\n\\endif\n'
            )
        script += give_back + 'DROP ROLE :"role";\n\\endif'
        return self._attempt(service, script, role=role, database=database or "")

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
