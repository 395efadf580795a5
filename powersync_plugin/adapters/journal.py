"""The journal: one SQLite database of events, the single source of truth.

Writes run in `BEGIN IMMEDIATE` transactions so a writer takes the lock before it reads the
stream head; the unique `(stream, version)` key turns a stale append into a concurrency error.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from pathlib import Path
from typing import Iterable, Optional, Sequence

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError

from powersync_plugin.core.errors import ConcurrencyError, DomainError
from powersync_plugin.core.events import NewEvent, StoredEvent

# The Alembic head this code reads and writes; a test keeps it equal to migrations/versions.
SCHEMA_REVISION = "0001"

metadata = MetaData()
events_table = Table(
    "events",
    metadata,
    Column("sequence", Integer, primary_key=True, autoincrement=True),
    Column("stream", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("schema", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("command", Text, nullable=False),
    UniqueConstraint("stream", "version", name="uq_events_stream_version"),
    Index("ix_events_type", "type"),
)


class JournalError(DomainError):
    pass


def make_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", future=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not pysqlite, open transactions, so BEGIN IMMEDIATE is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 10000")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Writers take the write lock before reading the stream head; readers never block them.
        immediate = connection.get_execution_options().get("immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Journal:
    def __init__(self, path: Path):
        self.path = path
        if not path.exists():
            raise JournalError(
                f"The journal {path} does not exist: run `dokku plugin:install` (the install trigger creates it)"
            )
        if not os.access(path, os.R_OK):
            raise JournalError(f"The journal {path} is not readable by {_user()}: check its owner (dokku) and mode (0600)")
        self.engine = make_engine(path)
        self._check_schema()

    def _check_schema(self) -> None:
        try:
            with self.engine.connect() as connection:
                row = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        except DatabaseError as exc:
            raise JournalError(f"The journal {self.path} cannot be read ({_reason(exc)}): it may be corrupted") from None
        found = row[0] if row else None
        if found != SCHEMA_REVISION:
            if found and found > SCHEMA_REVISION:
                raise JournalError(
                    f"The journal schema is {found}, newer than this plugin's {SCHEMA_REVISION}: "
                    "upgrade the plugin (`dokku plugin:update powersync`)"
                )
            raise JournalError(
                f"The journal schema is {found or 'missing'}, expected {SCHEMA_REVISION}: "
                "run `dokku plugin:install` to migrate it"
            )

    def load(self, stream: str) -> list[StoredEvent]:
        query = select(events_table).where(events_table.c.stream == stream).order_by(events_table.c.version)
        try:
            with self.engine.connect() as connection:
                return [_to_stored(row) for row in connection.execute(query)]
        except DatabaseError as exc:
            raise JournalError(f"The journal cannot be read ({_reason(exc)})") from None

    def streams(self) -> list[str]:
        query = select(events_table.c.stream).distinct().order_by(events_table.c.stream)
        with self.engine.connect() as connection:
            return [row[0] for row in connection.execute(query)]

    def head(self, stream: str) -> int:
        query = select(func.max(events_table.c.version)).where(events_table.c.stream == stream)
        with self.engine.connect() as connection:
            return connection.execute(query).scalar() or 0

    def append(
        self,
        stream: str,
        expected_version: int,
        new_events: Sequence[NewEvent],
        actor: str,
        command: str,
        now: Optional[dt.datetime] = None,
    ) -> list[StoredEvent]:
        """Append after `expected_version`, or raise ConcurrencyError if the stream moved."""
        recorded_at = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows = [
            {
                "stream": stream,
                "version": expected_version + offset,
                "type": item.type,
                "schema": item.schema,
                "payload": json.dumps(dict(item.payload), sort_keys=True),
                "recorded_at": recorded_at,
                "actor": actor,
                "command": command,
            }
            for offset, item in enumerate(new_events, start=1)
        ]
        try:
            with self.engine.connect().execution_options(immediate=True) as connection, connection.begin():
                current = connection.execute(
                    select(func.max(events_table.c.version)).where(events_table.c.stream == stream)
                ).scalar() or 0
                if current != expected_version:
                    raise ConcurrencyError(
                        f"{stream} changed concurrently (at revision {current}, expected {expected_version}): retry"
                    )
                result = []
                for row in rows:
                    sequence = connection.execute(events_table.insert().values(**row)).inserted_primary_key[0]
                    result.append(_to_stored({**row, "sequence": sequence}))
                return result
        except IntegrityError:
            raise ConcurrencyError(f"{stream} changed concurrently: retry") from None
        except OperationalError as exc:
            raise JournalError(f"The journal could not be written ({_reason(exc)}); nothing was recorded") from None


def _to_stored(row) -> StoredEvent:
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return StoredEvent(
        sequence=mapping["sequence"],
        stream=mapping["stream"],
        version=mapping["version"],
        type=mapping["type"],
        schema=mapping["schema"],
        payload=json.loads(mapping["payload"]),
        recorded_at=mapping["recorded_at"],
        actor=mapping["actor"],
        command=mapping["command"],
    )


def _reason(exc: Exception) -> str:
    original = getattr(exc, "orig", exc)
    return str(original)


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def create_or_upgrade(path: Path) -> None:
    """Create the journal file 0600 and bring its schema to head with Alembic (install trigger)."""
    from alembic import command
    from alembic.config import Config

    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    os.chmod(path, 0o600)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parents[2] / "migrations"))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{path}")
    command.upgrade(config, "head")


def iter_all(journal: Journal) -> Iterable[StoredEvent]:
    with journal.engine.connect() as connection:
        for row in connection.execute(select(events_table).order_by(events_table.c.sequence)):
            yield _to_stored(row)
