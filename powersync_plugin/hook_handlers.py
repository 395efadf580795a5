"""Dokku triggers. A trigger never fails the user's command: errors become warnings, exit 0.

(A failing `pre-delete` would abort `apps:destroy`, which is never what an operator destroying an
app wants from this plugin.) The one exception is `post-app-rename-setup`: when the journal cannot
follow an instance to its new name, the rename must stop before Dokku destroys the old app,
because that app's `pre-delete` would otherwise record the instance destroyed and drop its slots.
"""
from __future__ import annotations

import sys

from powersync_plugin.core.errors import DomainError

WATCHED_KEYS = {"SECRET_KEY", "DATABASE_URL"}
MAY_FAIL = {"post-app-rename-setup"}


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
        elif trigger == "post-app-rename-setup":
            Context().application().on_app_rename_setup(args[0], args[1])
        elif trigger == "post-app-rename":
            Context().application().on_app_renamed(args[0], args[1])
        elif trigger == "post-domains-update":
            # argv: APP ACTION [DOMAIN...] (dokku plugins/domains); the certs plugin's bare
            # `post-domains-update APP` follows a post-certs-* trigger, handled below.
            Context().application().on_url_inputs_changed(args[0], f"domains:{args[1]}", f"the domains of {args[0]} changed")
        elif trigger in ("post-certs-update", "post-certs-remove"):
            # argv: APP (dokku plugins/certs, dokku-letsencrypt)
            verb = "added" if trigger == "post-certs-update" else "removed"
            Context().application().on_url_inputs_changed(args[0], f"certificate {verb}", f"a certificate was {verb} on {args[0]}")
        elif trigger == "post-app-clone-setup":
            Context().application().on_app_clone_setup(args[0], args[1])
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
        if trigger in MAY_FAIL:
            print(f" !     powersync: {trigger} stopped the command; nothing was renamed in the journal", file=sys.stderr)
            return 1
    except Exception as exc:  # a trigger must never break Dokku's command
        print(f" !     powersync: {trigger} hook failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if trigger in MAY_FAIL:
            return 1
    return 0
