"""Tasks the install/update trigger runs inside the plugin's venv."""
from __future__ import annotations

import sys

from powersync_plugin import settings
from powersync_plugin.adapters.journal import Journal, create_or_upgrade
from powersync_plugin.read_side import summary


def rebuild_summaries() -> None:
    """Fill the read model for every stream whose summary is missing or stale (after an upgrade)."""
    journal = Journal(settings.journal_path())
    for stream in journal.streams():
        summary(stream, journal)


def main(argv: list[str]) -> int:
    if argv[:1] == ["migrate"]:
        create_or_upgrade(settings.journal_path())
        rebuild_summaries()
        return 0
    print(f" !     unknown maintenance task {argv!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
