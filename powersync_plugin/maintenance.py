"""Tasks the install/update trigger runs inside the plugin's venv."""
from __future__ import annotations

import sys

from powersync_plugin import settings
from powersync_plugin.adapters.journal import Journal, alembic_head, create_or_upgrade
from powersync_plugin.core.errors import DomainError
from powersync_plugin.journal_safety import before_migration
from powersync_plugin.read_side import summary


def rebuild_summaries() -> None:
    """Fill the read model for every stream whose summary is missing or stale (after an upgrade)."""
    journal = Journal(settings.journal_path())
    for stream in journal.streams():
        summary(stream, journal)


def main(argv: list[str]) -> int:
    if argv[:1] == ["migrate"]:
        head = alembic_head(settings.journal_path())
        try:
            kept = before_migration(head)
        except DomainError as exc:  # no migration without the copy to go back to
            print(f" !     {exc}\n !     The journal schema was not migrated", file=sys.stderr)
            return 1
        if kept:
            revision, copy = kept
            print(f"-----> Journal schema {revision} -> {head}: the journal before the migration is kept at {copy.path}")
            print(f"       ({copy.events} events; README: Backing up and restoring the journal)")
        create_or_upgrade(settings.journal_path())
        rebuild_summaries()
        return 0
    print(f" !     unknown maintenance task {argv!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
