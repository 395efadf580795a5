"""The journal: one SQLite database of events, the single source of truth.

Writes go through SQLAlchemy in `BEGIN IMMEDIATE` transactions, so a writer takes the lock before
it reads the stream head; the unique `(stream, version)` key turns a stale append into a
concurrency error. Reads use the standard library's sqlite3 on the same table: importing
SQLAlchemy costs about 175 ms, more than the whole budget of a read command such as `info`.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

from powersync_plugin.core.errors import ConcurrencyError, DomainError

if TYPE_CHECKING:  # the events' dataclasses cost a read that uses only summaries (list, exists) ~6 ms
    from powersync_plugin.core.events import NewEvent, StoredEvent

# The Alembic head this code reads and writes; a test keeps it equal to migrations/versions.
SCHEMA_REVISION = "0002"
_COLUMNS = "sequence, stream, version, type, schema, payload, recorded_at, actor, command"
_COPIED = ("version", "type", "schema", "payload", "recorded_at", "actor", "command")  # a row without its stream


class JournalError(DomainError):
    pass


def make_engine(path: Path):
    from sqlalchemy import create_engine, event

    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not pysqlite, open transactions, so BEGIN IMMEDIATE is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

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
        self._reader: Optional[sqlite3.Connection] = None
        self._engine = None
        self._check_schema()

    @property
    def reader(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = sqlite3.connect(self.path, timeout=10)
        return self._reader

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return self.reader.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"The journal {self.path} cannot be read ({exc}): it may be corrupted") from None

    def _check_schema(self) -> None:
        rows = self._read("SELECT version_num FROM alembic_version")
        found = rows[0][0] if rows else None
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
        return _to_stored(self._read(f"SELECT {_COLUMNS} FROM events WHERE stream = ? ORDER BY version", (stream,)))

    def streams(self) -> list[str]:
        return [row[0] for row in self._read("SELECT DISTINCT stream FROM events ORDER BY stream")]

    def latest_payload(self, stream: str, type_: str, key: str) -> Optional[dict]:
        """The payload of the newest `type_` event of `stream` whose payload["key"] is `key`."""
        rows = self._read(
            "SELECT payload FROM events WHERE stream = ? AND type = ? AND json_extract(payload, '$.key') = ? "
            "ORDER BY version DESC LIMIT 1",
            (stream, type_, key),
        )
        return json.loads(rows[0][0]) if rows else None

    def head(self, stream: str) -> int:
        return self._read("SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?", (stream,))[0][0]

    @contextmanager
    def _transaction(self, streams: str):
        """A write transaction (BEGIN IMMEDIATE); a unique-key clash means another writer won."""
        from sqlalchemy.exc import DatabaseError, IntegrityError

        if self._engine is None:
            self._engine = make_engine(self.path)
        try:
            with self._engine.begin() as connection:
                yield connection
        except IntegrityError:
            raise ConcurrencyError(f"{streams} changed concurrently: retry") from None
        except DatabaseError as exc:
            raise JournalError(f"The journal could not be written ({getattr(exc, 'orig', exc)}); nothing was recorded") from None

    @staticmethod
    def _head_in(connection, stream: str) -> int:
        from sqlalchemy import func, select

        from powersync_plugin.adapters.journal_schema import events_table

        return connection.execute(select(func.max(events_table.c.version)).where(events_table.c.stream == stream)).scalar() or 0

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
        from powersync_plugin.adapters.journal_schema import events_table

        recorded_at = _timestamp(now)
        rows = [
            _row(stream, expected_version + offset, item, recorded_at, actor, command)
            for offset, item in enumerate(new_events, start=1)
        ]
        with self._transaction(stream) as connection:
            current = self._head_in(connection, stream)
            if current != expected_version:
                raise ConcurrencyError(
                    f"{stream} changed concurrently (at revision {current}, expected {expected_version}): retry"
                )
            stored = []
            for row in rows:
                sequence = connection.execute(events_table.insert().values(**row)).inserted_primary_key[0]
                stored += _to_stored([(sequence, *row.values())])
            return stored

    def continue_stream(
        self, old: str, old_version: int, new: str, renamed: NewEvent, renamed_from: NewEvent, actor: str, command: str,
    ) -> None:
        """`apps:rename` of an instance, in one transaction: `new` receives a verbatim copy of
        `old`'s events (same versions, times and actors, so every reference between them still
        holds) followed by `renamed_from`; `old` ends with `renamed`. Nothing is rewritten."""
        from sqlalchemy import select

        from powersync_plugin.adapters.journal_schema import events_table

        recorded_at = _timestamp(None)
        with self._transaction(f"{old} or {new}") as connection:
            current = self._head_in(connection, old)
            if current != old_version:
                raise ConcurrencyError(f"{old} changed concurrently (at revision {current}, expected {old_version}): retry")
            copied = connection.execute(
                select(*(events_table.c[name] for name in _COPIED))
                .where(events_table.c.stream == old).order_by(events_table.c.version)
            ).all()
            rows = [dict(zip(_COPIED, values)) for values in copied]
            self._write_continued(connection, new, rows, _row(new, old_version + 1, renamed_from, recorded_at, actor, command))
            connection.execute(events_table.insert().values(**_row(old, old_version + 1, renamed, recorded_at, actor, command)))

    def import_stream(self, stream: str, rows: Sequence[dict], imported: NewEvent, actor: str, command: str) -> None:
        """`powersync:import`, in one transaction: `stream` receives the exported events as they
        were recorded (versions, times, actors, commands; payloads as the export left them), then
        `imported`. Refused when the journal holds any event of `stream`."""
        with self._transaction(stream) as connection:
            self._write_continued(connection, stream, rows, _row(stream, len(rows) + 1, imported, _timestamp(None), actor, command))

    def _write_continued(self, connection, stream: str, rows: Sequence[dict], then: dict) -> None:
        """Write `rows` (the _COPIED columns, versions 1..n) to an unused stream, then the row `then`."""
        from powersync_plugin.adapters.journal_schema import events_table

        if self._head_in(connection, stream):
            raise JournalError(
                f"The journal already holds the history of another instance named {stream}; "
                "its history cannot be merged: use a name never used by an instance on this host"
            )
        for values in rows:
            payload = values["payload"]
            values = {**values, "payload": payload if isinstance(payload, str) else json.dumps(payload, sort_keys=True)}
            connection.execute(events_table.insert().values(stream=stream, **{name: values[name] for name in _COPIED}))
        connection.execute(events_table.insert().values(**then))

    def history_window(self, stream: str, limit: int, types: Optional[Sequence[str]] = None) -> int:
        """The version where the last `limit` shown events (not outcomes; of `types` if given) start."""
        shown = f"AND type IN ({','.join('?' * len(types))})" if types else "AND type NOT IN ('deploy.succeeded', 'deploy.failed')"
        rows = self._read(
            f"SELECT version FROM events WHERE stream = ? {shown} ORDER BY version DESC LIMIT 1 OFFSET ?",
            (stream, *(types or ()), limit - 1),
        )
        return rows[0][0] if rows else 1

    def load_from(self, stream: str, version: int) -> list[StoredEvent]:
        rows = self._read(f"SELECT {_COLUMNS} FROM events WHERE stream = ? AND version >= ? ORDER BY version", (stream, version))
        return _to_stored(rows)

    def count_before(self, stream: str, types: Sequence[str], version: int) -> int:
        marks = ",".join("?" * len(types))
        return self._read(
            f"SELECT COUNT(*) FROM events WHERE stream = ? AND version < ? AND type IN ({marks})", (stream, version, *types)
        )[0][0]

    def link_before(self, stream: str, version: int, opening: Sequence[str], closing: Sequence[str]) -> Optional[int]:
        """The version of the link in effect just before `version` (None when not linked then)."""
        # One index seek per type: SQLite cannot merge several (stream, type) ranges in order.
        latest = []
        for kind in (*opening, *closing):
            latest += self._read(
                "SELECT version, type FROM events WHERE stream = ? AND type = ? AND version < ? "
                "ORDER BY version DESC LIMIT 1",
                (stream, kind, version),
            )
        if not latest:
            return None
        link_version, kind = max(latest)
        if kind in closing:
            return None
        failed = self._read(
            "SELECT 1 FROM events WHERE stream = ? AND version < ? AND type = 'deploy.failed' "
            "AND json_extract(payload, '$.cause') = ? LIMIT 1",
            (stream, version, link_version),
        )
        return None if failed else link_version

    def summaries(self, stream: Optional[str] = None) -> dict[str, tuple[int, int, str]]:
        """stream -> (summary version, stream head, summary JSON); a summary is fresh when they match."""
        where, params = ("WHERE s.stream = ?", (stream,)) if stream else ("", ())
        rows = self._read(
            "SELECT s.stream, s.version, (SELECT MAX(version) FROM events e WHERE e.stream = s.stream), s.summary "
            f"FROM summaries s {where}",
            params,
        )
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    def save_summary(self, stream: str, version: int, summary: str) -> None:
        """Upsert a stream's summary unless a newer one is already stored (a cache: failures are harmless)."""
        try:
            with closing(sqlite3.connect(self.path, timeout=10)) as connection, connection:
                connection.execute(
                    "INSERT INTO summaries (stream, version, summary) VALUES (?, ?, ?) "
                    "ON CONFLICT(stream) DO UPDATE SET version = excluded.version, summary = excluded.summary "
                    "WHERE excluded.version >= summaries.version",
                    (stream, version, summary),
                )
        except sqlite3.DatabaseError:
            pass

    def iter_all(self) -> Iterable[StoredEvent]:
        yield from _to_stored(self._read(f"SELECT {_COLUMNS} FROM events ORDER BY sequence"))


def _timestamp(now: Optional[dt.datetime]) -> str:
    return (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(stream: str, version: int, item: NewEvent, recorded_at: str, actor: str, command: str) -> dict:
    """An events row, its keys in the table's column order (_to_stored relies on it)."""
    return {
        "stream": stream,
        "version": version,
        "type": item.type,
        "schema": item.schema,
        "payload": json.dumps(dict(item.payload), sort_keys=True),
        "recorded_at": recorded_at,
        "actor": actor,
        "command": command,
    }


def _to_stored(rows: Iterable[tuple]) -> list[StoredEvent]:
    from powersync_plugin.core.events import StoredEvent

    return [
        StoredEvent(sequence, stream, version, type_, schema, json.loads(payload), recorded_at, actor, command)
        for sequence, stream, version, type_, schema, payload, recorded_at, actor, command in rows
    ]


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def create_or_upgrade(path: Path) -> None:
    """Create the journal file 0600 and bring its schema to head with Alembic (install trigger)."""
    from alembic import command

    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    command.upgrade(alembic_config(path), "head")


def alembic_config(path: Path):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parents[2] / "migrations"))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{path}")
    return config


def alembic_head(path: Path) -> str:
    """The revision the migrations bring the journal to (what `upgrade head` would reach)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(path)).get_current_head()
