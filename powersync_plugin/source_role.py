"""Least privilege on the source (`--source-role dedicated`, opt-in at link): the instance
replicates as a Postgres role of its own instead of the backend's DSN user (dokku-postgres's
superuser).

The role has LOGIN REPLICATION, SELECT on the tables of the `powersync` publication (see
SourceDatabase.grant_published for tables added later) and owns its storage. It is created at
link, before the first publish, and dropped at unlink, destroy and apps:destroy, after the slots
and storage went. Its password is random, generated here, recorded in the link event of the 0600
journal (as the API token is in the create event), masked wherever a payload is shown, sent to
Postgres only as a SCRAM verifier on `postgres:connect`'s stdin, and handed to the instance only
inside PS_DATA_SOURCE_URI / PS_STORAGE_SOURCE_URI. The host, port, database and query of those
DSNs still follow the backend's DATABASE_URL, so rotating it keeps working.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from typing import Optional
from urllib.parse import quote, urlsplit, urlunsplit

from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.names import source_role_name
from powersync_plugin.core.planner import Action, Kind
from powersync_plugin.core.state import InstanceState
from powersync_plugin.services import Services
from powersync_plugin.source_database import Leftover

SUPERUSER, DEDICATED = "superuser", "dedicated"
MODES = (SUPERUSER, DEDICATED)
SCRAM_ITERATIONS = 4096  # Postgres's own default (scram_iterations)


def plan_link(
    s: Services, state: InstanceState, mode: str, backend: str, service: Optional[str], new_events: list[ev.NewEvent],
) -> list[ev.NewEvent]:
    """The link event with the source role chosen, journaled in its payload."""
    payload = role_payload(s, state.name, mode, backend, service)
    return [ev.NewEvent(item.type, {**item.payload, **payload}) if item.type == ev.BACKEND_LINKED else item for item in new_events]


def role_payload(s: Services, name: str, mode: str, backend: str, service: Optional[str]) -> dict:
    """The link's (or adoption's) record of the source role; a dedicated role needs a
    dokku-postgres service, the only server the plugin can create a role on."""
    if mode not in MODES:
        raise DomainError(f"Invalid --source-role {mode!r}: use superuser or dedicated")
    payload = {"source_role": mode}
    if mode == DEDICATED:
        if service is None:
            raise DomainError(
                f"--source-role dedicated needs {backend}'s DATABASE_URL to be a dokku-postgres service linked to it "
                f"(`dokku postgres:app-links {backend}`): the plugin creates the role through postgres:connect. "
                "Create a role by hand and put its DSN in DATABASE_URL, or link with --source-role superuser"
            )
        password = secrets.token_urlsafe(32)
        s.out.redactor.add(password)
        payload.update(source_role_name=source_role_name(name), source_role_password=password)
    return payload


def planned_actions(state: InstanceState, mode: str, service: Optional[str]) -> list[Action]:
    if mode != DEDICATED or service is None:
        return []
    return [Action(
        Kind.CREATE_ROLE, service,
        detail=f"{source_role_name(state.name)}: LOGIN REPLICATION, SELECT on the powersync publication's tables, owns the storage",
    )]


def prepare(s: Services, state: InstanceState, service: Optional[str], source_uri: str) -> str:
    """Create or refresh the instance's role (after the storage database exists) and return the
    DSN it replicates with: `source_uri` as the role, or unchanged under the default role."""
    link = state.link
    if link is None or not link.source_role or service is None:
        return source_uri
    s.out.step(f"Creating source role {link.source_role} on {service} (LOGIN REPLICATION, SELECT on the publication)")
    s.source_db.ensure_role(service, link.source_role, scram_verifier(link.source_role_password))
    s.source_db.grant_published(service, link.source_role)
    if state.storage != "uri":
        s.source_db.hand_storage_to(service, link.source_role, state.storage_database)
    return as_role(state, source_uri)


def source_dsn(s: Services, state: InstanceState, source_uri: str) -> str:
    """The DSN a publish gives the instance: an instance adopted with a dedicated role moves to
    it at its first managed publish (the role is made then; the running container keeps the old
    DSN until Dokku's zero-downtime restart replaces it, and the new one takes over the same slot
    and storage), later publishes only put the role's credentials in."""
    if state.link is not None and state.link.source_role and not state.managed_config:
        return prepare(s, state, state.link.postgres_service, source_uri)
    return as_role(state, source_uri)


def refresh_grants(s: Services, state: InstanceState) -> None:
    """Grant SELECT again on the publication's tables (rotate: after `ALTER PUBLICATION powersync
    ADD TABLE ...`, the role reads the new table)."""
    link = state.link
    if link is not None and link.source_role and link.postgres_service:
        s.out.step(f"Granting {link.source_role} SELECT on the tables of the powersync publication")
        s.source_db.grant_published(link.postgres_service, link.source_role)


def as_role(state: InstanceState, source_uri: str) -> str:
    """`source_uri` (normalised, from the backend) with the role's credentials in place of its
    user and password; unchanged under the default role."""
    link = state.link
    if link is None or not link.source_role:
        return source_uri
    parts = urlsplit(source_uri)
    host = parts.netloc.rpartition("@")[2]
    userinfo = f"{quote(link.source_role, safe='')}:{quote(link.source_role_password, safe='')}"
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, ""))


def drop(s: Services, state: InstanceState, service: Optional[str]) -> list[Leftover]:
    """Drop the last link's role, if it had one (idempotent: a role already gone is no error)."""
    role = state.last_source_role
    if not role or not service or not s.dokku.postgres_exists(service) or not s.source_db.role_exists(service, role):
        return []
    s.out.step(f"Dropping source role {role} on {service}")
    problem = s.source_db.drop_role(service, role, state.storage_database)
    if problem:
        return [Leftover(
            f"source role {role} on {service}", problem,
            f"echo 'REASSIGN OWNED BY \"{role}\" TO postgres; DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\";' "
            f"| dokku postgres:connect {service}",
        )]
    return []


def drop_actions(state: InstanceState, service: Optional[str]) -> list[Action]:
    if not state.last_source_role or not service:
        return []
    return [Action(Kind.DROP_ROLE, service, detail=f"{state.last_source_role} (what it owns goes back to the superuser)")]


def describe(state: InstanceState) -> str:
    """`info --source-role`: how the instance connects to its source."""
    if state.link is None:
        return "-"
    return f"{DEDICATED} ({state.link.source_role})" if state.link.source_role else SUPERUSER


def scram_verifier(password: str) -> str:
    """The SCRAM-SHA-256 verifier Postgres stores for `password` (RFC 5802/7677, as libpq's
    PQencryptPasswordConn makes it): given as PASSWORD, it keeps the password itself off the
    server, out of its logs and pg_stat_activity."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    encode = lambda data: base64.b64encode(data).decode("ascii")  # noqa: E731
    return (
        f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{encode(salt)}"
        f"${encode(hashlib.sha256(client_key).digest())}:{encode(server_key)}"
    )
