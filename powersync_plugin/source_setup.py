"""Preparing a dokku-postgres source for an instance at link: its prerequisites (wal_level,
the publication), the postgres link, the storage database. The SQL is in source_database.py."""
from __future__ import annotations

import time

from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.planner import Action, Kind
from powersync_plugin.services import Services


def check_source(s: Services, service: str, configure_source: bool, dry_run: bool = False) -> list[Action]:
    """Check the source's prerequisites; with --configure-source set wal_level=logical and
    restart it, or, in a dry run, return those as planned actions (a dry run only reads)."""
    planned: list[Action] = []
    wal_level = s.source_db.wal_level(service)
    if wal_level != "logical" and configure_source and dry_run:
        planned = [
            Action(Kind.SET_WAL_LEVEL, service, detail=f"(now {wal_level})"),
            Action(Kind.RESTART, service, detail="postgres service: disconnects every app linked to it", restarts=True),
        ]
    elif wal_level != "logical":
        if not configure_source:
            raise DomainError(
                f"The source database (dokku-postgres {service}) has wal_level={wal_level}; PowerSync needs logical.\n"
                f"Fix: echo 'ALTER SYSTEM SET wal_level = logical;' | dokku postgres:connect {service} && "
                f"dokku postgres:restart {service}\n"
                "(or rerun with --configure-source; the restart briefly disconnects every app linked to it)"
            )
        s.out.warn(f"Setting wal_level=logical on {service}: restarting it disconnects every app linked to it")
        s.source_db.set_wal_level_logical(service)
        s.dokku.postgres_restart(service)
        _require_logical_after_restart(s, service)
    if not s.source_db.has_publication(service):
        raise DomainError(
            f"The source database (dokku-postgres {service}) has no publication named powersync.\n"
            f"Fix: echo 'CREATE PUBLICATION powersync FOR ALL TABLES;' | dokku postgres:connect {service}\n"
            "(or FOR TABLE a, b to publish only the tables your sync rules read)"
        )
    return planned


def _require_logical_after_restart(s: Services, service: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            wal_level = s.source_db.wal_level(service)
            break
        except DomainError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    if wal_level != "logical":
        raise DomainError(f"wal_level on {service} is still {wal_level} after the restart")


def link_database(s: Services, service: str, name: str, dsn: str) -> bool:
    """postgres:link the service to the instance; True if this call made the link.

    dokku-postgres calls an app linked when any of its config vars holds the DSN text, so a
    stale PS_DATA_SOURCE_URI would make the link fail ("Already linked as ..."): trust the
    service's Links line, and clear stale copies first.
    """
    if name in s.dokku.postgres_links(service):
        return False
    service_dsn = s.dokku.postgres_dsn(service)
    s.out.redactor.add(service_dsn)
    stale = [key for key, value in s.dokku.config(name).items() if service_dsn in value or dsn in value]
    if stale:
        s.out.step(f"Clearing stale {', '.join(sorted(stale))} on {name} (phantom link)")
        s.dokku.config_unset(name, stale, restart=False)
    s.out.step(f"Linking postgres service {service} to {name}")
    s.dokku.postgres_link(service, name)
    return True


def ensure_storage_database(s: Services, service: str, database: str) -> None:
    if not s.source_db.database_exists(service, database):
        s.out.step(f"Creating storage database {database} on {service}")
        s.source_db.create_database(service, database)
