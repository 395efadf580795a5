"""Script run by bin/dokku and bin/plugn: ``entry.py dokku|plugn ARGS...``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if __name__ == "__main__":
    tool, args = sys.argv[1], sys.argv[2:]
    if tool == "dokku":
        from harness import sudo

        if sudo.needs_reexec(args):
            sudo.reexec_as_dokku(args)
    from harness import cli

    sys.exit(cli.dokku_main(args) if tool == "dokku" else cli.plugn_main(args))
