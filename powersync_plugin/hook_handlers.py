"""Dokku triggers. A trigger never fails the user's command: errors become warnings, exit 0.

(`pre-delete` is the exception Dokku gives meaning to: a failure would abort `apps:destroy`,
which is never what an operator destroying an app wants from this plugin.)
"""
from __future__ import annotations

import sys

from powersync_plugin.core.errors import DomainError

WATCHED_KEYS = {"SECRET_KEY", "DATABASE_URL"}


def run_hook(trigger: str, args: list[str]) -> int:
    from powersync_plugin.cli import Context

    try:
        if trigger == "post-config-update":
            app, action, keys = args[0], args[1], args[2:]
            if action != "clear" and not WATCHED_KEYS & set(keys):
                return 0
            Context().application().on_backend_config_change(app, action, keys)
        elif trigger == "pre-delete":
            Context().application().on_app_destroy(args[0])
        elif trigger == "service-list":
            from powersync_plugin import reads

            if not args or args[0] in ("", "powersync"):
                for row in reads.list_instances():
                    print(f"powersync:{row['name']}")
        else:
            return 0
    except DomainError as exc:
        for line in str(exc).splitlines():
            print(f" !     powersync: {line}", file=sys.stderr)
    except Exception as exc:  # a trigger must never break Dokku's command
        print(f" !     powersync: {trigger} hook failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 0
