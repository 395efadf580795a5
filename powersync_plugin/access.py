"""Access to what a command reaches beyond the instance Dokku checked.

Before the plugin runs, Dokku asks its `user-auth` trigger about the command line as typed; an ACL
plugin that checks per app (dokku-acl's DOKKU_ACL_PER_APP_COMMANDS) reads the app from the second
word, the instance. Yet `link` copies the backend's SECRET_KEY into the instance's config (which
everyone allowed on the instance can read), `token` signs with it and `unlink` changes and restarts
the backend; `set --global` changes every future instance whatever app the second word names.
So the plugin asks the same trigger once more, the way Dokku would for a command on that app:
`powersync:link BACKEND`, or the canonical `powersync:set --global KEY VALUE`. Root on the host
and a super user pass, as they pass Dokku's own check.
"""
from __future__ import annotations

from powersync_plugin.core.errors import DomainError
from powersync_plugin.services import Services


def require_app(s: Services, command: str, app: str, why: str) -> None:
    """Refuse unless the user may run `command` with `app` as its app; `why` says what the
    command does to `app`."""
    refusal = s.dokku.user_auth(command, app)
    if refusal is not None:
        raise DomainError(
            f"Access to {app} denied for {s.actor}: {why}, so it needs the access `dokku {command} {app}` "
            f"needs, which Dokku refused ({refusal}). Nothing changed; ask the host's admin for access to {app}"
        )


def require_global(s: Services, command: str, *args: str) -> None:
    """Refuse unless the user may run the plugin-wide form `command --global ARGS`."""
    refusal = s.dokku.user_auth(command, "--global", *args)
    if refusal is not None:
        raise DomainError(
            f"Access to plugin-wide settings denied for {s.actor}: `{command} --global` changes every new "
            f"instance, so it needs the access `dokku {command} --global {' '.join(args)}` needs, which Dokku "
            f"refused ({refusal}). Nothing changed; ask the host's admin"
        )
