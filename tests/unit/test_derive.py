import base64

import pytest

from powersync_plugin.core import derive
from powersync_plugin.core.errors import DomainError


def test_secret_key_b64_is_base64url_without_padding_or_newlines():
    secret = "s" * 100 + "?>~"  # long enough that GNU base64 would wrap, with url-unsafe bytes
    value = derive.secret_key_b64(secret)
    assert "\n" not in value and "=" not in value and "+" not in value and "/" not in value
    assert base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)) == secret.encode()


@pytest.mark.parametrize(
    "uri, expected, sslmode",
    [
        ("postgresql+asyncpg://u:p@db:5432/app", "postgresql://u:p@db:5432/app", None),
        ("postgres://u:p@dokku-postgres-svc:5432/svc", "postgresql://u:p@dokku-postgres-svc:5432/svc", None),
        ("postgresql://u:p@h/app?sslmode=require&application_name=x", "postgresql://u:p@h/app?application_name=x", "require"),
    ],
)
def test_normalise_source_uri(uri, expected, sslmode):
    assert derive.normalise_source_uri(uri) == (expected, sslmode)


@pytest.mark.parametrize("uri", ["mysql://u:p@h/db", "sqlite:///x.db", "not a url"])
def test_non_postgres_sources_are_refused(uri):
    with pytest.raises(DomainError):
        derive.normalise_source_uri(uri)


DSN = "postgres://postgres:pw@dokku-postgres-acce-u:5432/acce_u"


@pytest.mark.parametrize(
    "uri",
    [
        DSN,
        "postgresql+asyncpg://postgres:pw@dokku-postgres-acce-u:5432/acce_u",  # a driver in the scheme
        "postgresql://postgres:other@dokku-postgres-acce-u/acce_u?sslmode=disable",  # password, port, query
        "postgres://postgres:pw@DOKKU-POSTGRES-ACCE-U:5432/acce_u",  # host names are case-insensitive
    ],
)
def test_same_database_ignores_scheme_password_default_port_and_query(uri):
    assert derive.same_database(uri, DSN) and derive.same_database(DSN, uri)


@pytest.mark.parametrize(
    "uri",
    [
        "postgres://postgres:pw@dokku-postgres-acce-v:5432/acce_u",  # another host
        "postgres://postgres:pw@dokku-postgres-acce-u:5433/acce_u",  # another port
        "postgres://postgres:pw@dokku-postgres-acce-u:5432/ACCE_U",  # database names are case-sensitive
        "postgres://app:pw@dokku-postgres-acce-u:5432/acce_u",  # another user
        "postgres://postgres:pw@dokku-postgres-acce-u:notaport/acce_u",
        "not a url",
        "",
    ],
)
def test_same_database_tells_other_databases_apart(uri):
    assert not derive.same_database(uri, DSN) and not derive.same_database(DSN, uri)


def test_redacted_uri_hides_the_password():
    assert derive.redacted_uri("postgresql://u:secretpw@h:5432/d") == "postgresql://u:*****@h:5432/d"


def test_hs256_signature_matches_a_known_vector():
    # RFC 7515 A.1 uses a different key encoding; this checks the structure and HMAC directly.
    import hashlib
    import hmac
    import json

    token = derive.sign_hs256(b"secret", {"sub": "1", "aud": "a", "iat": 1, "exp": 2}, "kid-1")
    header_b64, claims_b64, signature_b64 = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    assert json.loads(base64.urlsafe_b64decode(pad(header_b64))) == {"alg": "HS256", "typ": "JWT", "kid": "kid-1"}
    expected = hmac.new(b"secret", f"{header_b64}.{claims_b64}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(pad(signature_b64)) == expected
