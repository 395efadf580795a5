"""Script run by bin/dokku and bin/plugn: ``entry.py dokku|plugn ARGS...``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import cli  # noqa: E402

if __name__ == "__main__":
    tool, args = sys.argv[1], sys.argv[2:]
    sys.exit(cli.dokku_main(args) if tool == "dokku" else cli.plugn_main(args))
