"""The journal's safety copies: `powersync:backup-journal`, and the copy the install trigger keeps
before a schema migration (README: Backing up and restoring the journal)."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Optional

from powersync_plugin import settings
from powersync_plugin.adapters.journal_backup import SIDE_FILES, BackupResult, backup, schema_revision
from powersync_plugin.core.errors import DomainError

BEFORE_MIGRATION = "journal-before-migration.sqlite3"  # only the last one is kept


def backups_dir() -> Path:
    return settings.data_root() / "backups"


def backup_journal(path: Optional[str], force: bool, now: Optional[dt.datetime] = None) -> BackupResult:
    journal = settings.journal_path()
    target = _chosen(journal, Path(path).expanduser().absolute(), force) if path else _default_target(now)
    result = backup(journal, target, force)
    _own(result.path)
    return result


def before_migration(head: str) -> Optional[tuple[str, BackupResult]]:
    """Keep a copy of the journal when its schema is about to change: (from revision, copy)."""
    journal = settings.journal_path()
    if not journal.exists():
        return None  # a first install: nothing to keep
    current = schema_revision(journal)
    if current == head:
        return None
    result = backup(journal, _backups_dir_ready() / BEFORE_MIGRATION, force=True)
    _own(result.path)
    return current or "none", result


def _chosen(journal: Path, target: Path, force: bool) -> Path:
    if not target.parent.is_dir():
        raise DomainError(f"The directory {target.parent} does not exist: create it first (nothing was written)")
    if target.is_dir():
        raise DomainError(f"{target} is a directory: give a file path, e.g. {target / 'journal.sqlite3'}")
    live = {journal.resolve(), *(journal.with_name(journal.name + suffix).resolve() for suffix in SIDE_FILES)}
    if target.resolve() in live:
        raise DomainError(f"{target} is the live journal: give another path (nothing was written)")
    if target.exists() and not force:
        raise DomainError(f"{target} already exists: choose another path or use --force to replace it")
    return target


def _default_target(now: Optional[dt.datetime]) -> Path:
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    directory = _backups_dir_ready()
    target, n = directory / f"journal-{stamp}.sqlite3", 1
    while target.exists():  # two backups in one second
        target, n = directory / f"journal-{stamp}-{n}.sqlite3", n + 1
    return target


def _backups_dir_ready() -> Path:
    directory = backups_dir()
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True)
        _own(directory)
    return directory


def _own(path: Path) -> None:
    """Run as root (the install trigger), hand the file to Dokku's user, who runs every command."""
    if os.geteuid() != 0:
        return
    import pwd

    try:
        user = pwd.getpwnam(os.environ.get("DOKKU_SYSTEM_USER") or "dokku")
    except KeyError:
        return
    os.chown(path, user.pw_uid, user.pw_gid)
