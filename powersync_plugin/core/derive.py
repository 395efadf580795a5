"""Values derived from a linked backend: the JWT key, the source URI, their fingerprints."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Optional
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from powersync_plugin.core.errors import DomainError

POSTGRES_SCHEMES = ("postgres", "postgresql")


def secret_key_b64(secret_key: str) -> str:
    """The JWK `k`: base64url of the raw secret bytes, no `=` padding, no newlines.

    GNU base64 wraps at 76 columns; a wrapped value silently breaks every token check.
    """
    return base64.urlsafe_b64encode(secret_key.encode("utf-8")).decode("ascii").rstrip("=")


def normalise_source_uri(uri: str) -> tuple[str, Optional[str]]:
    """Return the URI PowerSync accepts, and the `sslmode` it carried (PowerSync ignores it there).

    A backend may hold `postgresql+asyncpg://`; PowerSync needs `postgres://` or `postgresql://`.
    """
    parts = urlsplit(uri.strip())
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme not in POSTGRES_SCHEMES:
        raise DomainError(
            f"DATABASE_URL uses the scheme {parts.scheme or '(none)'!r}, not Postgres: PowerSync "
            "replicates from Postgres only (postgres:// or postgresql://)"
        )
    if not parts.hostname:
        raise DomainError("DATABASE_URL has no host: expected postgres://USER:PASSWORD@HOST:PORT/DB")
    query = parse_qsl(parts.query, keep_blank_values=True)
    sslmode = next((value for key, value in query if key == "sslmode"), None)
    kept = [(key, value) for key, value in query if key != "sslmode"]
    normalised = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(kept), ""))
    return normalised, sslmode


def with_database(uri: str, database: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


def database_name(uri: str) -> str:
    return urlsplit(uri).path.lstrip("/")


def same_database(uri: str, other: str) -> bool:
    """Whether two Postgres URIs reach the same database as the same user.

    Compared: host (case-insensitive, as DNS is), port (5432 when absent), database, user. Not
    compared: the scheme (a backend may hold `postgresql+asyncpg://` for dokku-postgres's
    `postgres://`), the password and the query. Used to confirm which dokku-postgres service
    a DATABASE_URL belongs to: its host does not name the service (`acce_u` is reached at
    `dokku-postgres-acce-u`).
    """
    def identity(value: str) -> Optional[tuple]:
        parts = urlsplit(value.strip())
        try:
            port = parts.port or 5432
        except ValueError:
            return None
        if not parts.hostname:
            return None
        return parts.hostname.lower(), port, unquote(parts.path.lstrip("/")), unquote(parts.username or "")

    found = identity(uri)
    return found is not None and found == identity(other)


def redacted_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(":" + parts.password + "@", ":*****@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def fingerprint(value: str) -> str:
    """A short, non-reversible marker so a change of a secret is detectable without storing it."""
    return hashlib.sha256(b"dokku-powersync:" + value.encode("utf-8")).hexdigest()[:16]


def rules_digest(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def sign_hs256(secret: bytes, claims: dict, kid: Optional[str]) -> str:
    """A JWT signed the way the backend signs: HS256 over the raw SECRET_KEY bytes."""
    header = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid

    def segment(obj: dict) -> str:
        raw = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    signing_input = segment(header) + "." + segment(claims)
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")
