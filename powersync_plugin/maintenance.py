"""Tasks the install/update trigger runs inside the plugin's venv."""
from __future__ import annotations

import sys

from powersync_plugin import settings
from powersync_plugin.adapters.journal import create_or_upgrade


def main(argv: list[str]) -> int:
    if argv[:1] == ["migrate"]:
        create_or_upgrade(settings.journal_path())
        return 0
    print(f" !     unknown maintenance task {argv!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
