"""Dokku triggers. A trigger never fails the user's command: errors become warnings, exit 0.

(A failing `pre-delete` would abort `apps:destroy`, which is never what an operator destroying an
app wants from this plugin.) The one exception is `post-app-rename-setup`: when the journal cannot
follow an instance to its new name, the rename must stop before Dokku destroys the old app,
because that app's `pre-delete` would otherwise record the instance destroyed and drop its slots.
"""
from __future__ import annotations

import sys
from typing import Callable, Optional

from powersync_plugin.core.errors import DomainError
from powersync_plugin.wiring import Context

MAY_FAIL = {"post-app-rename-setup"}
WATCHED_KEYS = {"SECRET_KEY", "DATABASE_URL"}  # the backend keys an instance derives from


def run_hook(trigger: str, args: list[str]) -> int:
    try:
        if trigger == "service-list":
            from powersync_plugin.read_side import list_instances

            if not args or args[0] in ("", "powersync"):
                for row in list_instances():
                    print(f"powersync:{row['name']}")
            return 0
        # cheap checks first: these triggers fire for every app, so the write path is loaded only
        # when one concerns the plugin
        if trigger == "post-config-update":
            changed = sorted(WATCHED_KEYS if args[1] == "clear" else WATCHED_KEYS & set(args[2:]))
            if not changed:
                return 0
            args = [args[0], args[1], *changed]  # APP ACTION, then only the keys that matter
        handler = _handler(trigger, args)
        if handler is not None:
            handler(Context().build())
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


def _handler(trigger: str, args: list[str]) -> Optional[Callable]:
    """The use case a trigger runs (app_events.py), with its arguments bound."""
    from powersync_plugin import app_events

    if trigger == "post-config-update":
        return lambda s: app_events.on_backend_config_change(s, args[0], args[1], args[2:])
    if trigger == "pre-delete":
        return lambda s: app_events.on_app_destroy(s, args[0])
    if trigger == "post-app-rename-setup":
        return lambda s: app_events.on_app_rename_setup(s, args[0], args[1])
    if trigger == "post-app-rename":
        return lambda s: app_events.on_app_renamed(s, args[0], args[1])
    if trigger == "post-domains-update":
        # argv: APP ACTION [DOMAIN...] (dokku plugins/domains); the certs plugin's bare
        # `post-domains-update APP` follows a post-certs-* trigger, handled below.
        return lambda s: app_events.on_url_inputs_changed(s, args[0], f"domains:{args[1]}", f"the domains of {args[0]} changed")
    if trigger in ("post-certs-update", "post-certs-remove"):
        # argv: APP (dokku plugins/certs, dokku-letsencrypt)
        verb = "added" if trigger == "post-certs-update" else "removed"
        return lambda s: app_events.on_url_inputs_changed(s, args[0], f"certificate {verb}", f"a certificate was {verb} on {args[0]}")
    if trigger == "post-app-clone-setup":
        return lambda s: app_events.on_app_clone_setup(s, args[0], args[1])
    return None
