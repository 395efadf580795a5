"""A consistent online copy of the journal, with SQLite's own backup API.

`sqlite3.Connection.backup` with every page in one step copies one read snapshot: in WAL mode
writers go on appending meanwhile, and the copy holds exactly the transactions committed before
the snapshot (never half of one). It is made in a temporary file beside the target, checked with
`PRAGMA integrity_check`, then put in place, so a failed copy never sits at the target's path.
Plain sqlite3 (no SQLAlchemy): the command must stay fast and work on any schema revision, since
the install trigger copies a journal that this code's schema check would refuse.
"""
from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from powersync_plugin.core.errors import DomainError

SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class BackupResult:
    path: Path
    events: int
    bytes: int


def schema_revision(path: Path) -> Optional[str]:
    """The journal's Alembic revision (None when the file or its version table is missing)."""
    if not path.exists():
        return None
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as connection:
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
    return row[0] if row else None


def backup(source: Path, target: Path, force: bool = False) -> BackupResult:
    """Copy the journal at `source` to `target` (0600); refuses an existing target unless `force`."""
    if not source.exists():
        raise DomainError(f"The journal {source} does not exist: nothing to back up")
    temporary = target.with_name(f".{target.name}.partial-{os.getpid()}")
    _remove(temporary)
    try:
        os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        # mode=rw: never create a journal that is not there; the timeout waits out a checkpoint.
        with closing(sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=30)) as origin, \
                closing(sqlite3.connect(temporary)) as copy:
            origin.backup(copy, pages=-1)
        with closing(sqlite3.connect(temporary)) as copy:
            verdict = [row[0] for row in copy.execute("PRAGMA integrity_check").fetchall()]
            if verdict != ["ok"]:
                raise DomainError(f"The copy failed PRAGMA integrity_check ({'; '.join(verdict[:3])}): nothing was kept")
            has_events = copy.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone()
            events = copy.execute("SELECT COUNT(*) FROM events").fetchone()[0] if has_events else 0
        # Closing the last connection checkpointed and removed the copy's -wal/-shm.
        if force:
            # A stale -wal beside the old file would be replayed into the new one on first open.
            for suffix in SIDE_FILES:
                _remove(target.with_name(target.name + suffix))
            os.replace(temporary, target)
        else:
            try:
                os.link(temporary, target)  # fails if the target appeared meanwhile: never overwrite
            except FileExistsError:
                raise DomainError(f"{target} already exists: choose another path or use --force") from None
        return BackupResult(target, events, target.stat().st_size)
    except sqlite3.DatabaseError as exc:
        raise DomainError(f"The journal could not be copied ({exc}): nothing was kept") from None
    except OSError as exc:
        raise DomainError(f"Cannot write the copy in {target.parent}: {exc.strerror} (nothing was kept)") from None
    finally:
        for suffix in ("", *SIDE_FILES):
            _remove(temporary.with_name(temporary.name + suffix))


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
