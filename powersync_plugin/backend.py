"""The backend app an instance serves: the secrets it derives from, its dokku-postgres service,
and the URL it hands its clients (POWERSYNC_URL)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from powersync_plugin import source_role
from powersync_plugin.adapters.dokku import DokkuCommandFailed
from powersync_plugin.core import derive
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.state import InstanceState
from powersync_plugin.services import Services

DERIVED_KEYS = ("PS_SECRET_KEY_B64", "PS_DATA_SOURCE_URI", "PS_STORAGE_SOURCE_URI")


@dataclass
class BackendSecrets:
    secret_key: str
    source_uri: str  # normalised, as read back from the instance's link
    storage_uri: Optional[str]


def backend_values(backend: str, env: dict[str, str]) -> tuple[str, str]:
    missing = [key for key in ("SECRET_KEY", "DATABASE_URL") if not env.get(key)]
    if missing:
        raise DomainError(
            f"{backend} has no {' and no '.join(missing)}: the instance derives its JWT key from SECRET_KEY and "
            f"its source from DATABASE_URL. Set them on {backend} (`dokku config:set {backend} ...`) or link its "
            "dokku-postgres service first"
        )
    return env["SECRET_KEY"], env["DATABASE_URL"]


def backend_reads(state: InstanceState) -> list[tuple]:
    """What backend_secrets reads (read_ahead.py): the backend's config and the instance's."""
    return [("config", state.link.backend), ("config", state.name)]


def backend_secrets(s: Services, state: InstanceState) -> BackendSecrets:
    backend = state.link.backend
    s.reads.start(*backend_reads(state))  # two independent `dokku` processes at once
    backend_env, instance_env = s.reads.take("config", backend), s.reads.take("config", state.name)
    secret_key, _ = backend_values(backend, backend_env)
    source = instance_env.get("PS_DATA_SOURCE_URI")
    if not source:
        raise DomainError(f"{state.name} has no PS_DATA_SOURCE_URI: relink it (`dokku powersync:unlink` then `link`)")
    s.out.redactor.add(secret_key, source)
    source = source_role.source_dsn(s, state, source)
    s.out.redactor.add(source)
    return BackendSecrets(secret_key, source, instance_env.get("PS_STORAGE_SOURCE_URI"))


def storage_uri(state: InstanceState, source_uri: str, instance_env: dict[str, str]) -> Optional[str]:
    """Bucket storage: a database beside the source, the URI given at create, or the source itself."""
    if state.storage_database:
        return derive.with_database(source_uri, state.storage_database)
    if state.storage == "uri":
        return instance_env.get("PS_STORAGE_SOURCE_URI")
    return None


def linked_service(s: Services, app: str, uri: str) -> Optional[str]:
    """The dokku-postgres service linked to `app` whose DSN reaches the database `uri` does, or
    None (a database dokku-postgres does not serve to `app`). Asked of dokku-postgres, never read
    off the host name: `acce_u` is reached at `dokku-postgres-acce-u`."""
    for service in s.dokku.postgres_app_links(app):
        dsn = s.dokku.postgres_dsn(service)
        s.out.redactor.add(dsn)
        if derive.same_database(dsn, uri):
            return service
    return None


def serves_source(s: Services, backend: str, service: Optional[str], uri: str) -> bool:
    """Whether `uri`, the backend's DATABASE_URL, still reaches the database of `service`, the
    dokku-postgres service the journal recorded at link (None: a source dokku-postgres does not
    serve). The journal names the service, so its DSN answers (rotate reads it ahead) without
    asking dokku-postgres for every service linked to the backend; that search (linked_service)
    answers only when the DSN does not match or cannot be read, or no service was recorded."""
    if service:
        try:
            dsn = s.reads.take("postgres_dsn", service)
        except DokkuCommandFailed:
            dsn = ""
        if dsn:
            s.out.redactor.add(dsn)
            if derive.same_database(dsn, uri):
                return True
    return linked_service(s, backend, uri) == service


def instance_url(s: Services, name: str) -> Optional[str]:
    """The URL clients reach the instance at (its first domain), or None without a domain."""
    vhosts = s.dokku.vhosts(name)
    if not vhosts:
        return None
    return ("https://" if s.dokku.tls_enabled(name) else "http://") + vhosts[0]


def points_here(s: Services, backend: str, url: Optional[str]) -> bool:
    """Whether the backend's POWERSYNC_URL is still this instance's (an operator may have
    pointed it elsewhere since; unknown when the link recorded no URL)."""
    return url is None or s.dokku.config(backend).get("POWERSYNC_URL") == url
