"""The dedicated source role's pure parts: the DSN it replicates with, the SCRAM verifier sent
instead of its password, the link payload and what history shows of it."""
import base64
import hashlib
import hmac

from powersync_plugin import source_role
from powersync_plugin.core import events as ev
from powersync_plugin.core.projector import project
from powersync_plugin.core.state import BackendLink, InstanceState
from powersync_plugin.read_model import masked_payload, source_role_text

PASSWORD = "Zx_9-" + "a" * 38


def linked(role=None, password="") -> InstanceState:
    link = BackendLink("api", "db", "f", "f", ("api",), None, None, 3, source_role=role, source_role_password=password)
    return InstanceState(name="ps-1", created=True, link=link)


def test_the_role_replaces_user_and_password_and_keeps_host_database_and_query():
    uri = "postgresql://postgres:super%40secret@dokku-postgres-db:5432/db_1?application_name=api"
    assert source_role.as_role(linked("powersync_ps_1", PASSWORD), uri) == (
        f"postgresql://powersync_ps_1:{PASSWORD}@dokku-postgres-db:5432/db_1?application_name=api"
    )
    assert source_role.as_role(linked(), uri) == uri  # the default: the backend's DSN as it is
    assert source_role.as_role(InstanceState(name="x"), uri) == uri


def test_a_dotted_role_and_any_password_character_survive_in_the_dsn():
    from urllib.parse import unquote, urlsplit

    state = linked("powersync_a.b", "p@ss:w/rd?#%")
    parts = urlsplit(source_role.as_role(state, "postgresql://u:p@h:5432/d"))
    assert (unquote(parts.username), unquote(parts.password), parts.hostname, parts.path) == (
        "powersync_a.b", "p@ss:w/rd?#%", "h", "/d",
    )


def test_the_scram_verifier_proves_the_password_without_holding_it():
    verifier = source_role.scram_verifier(PASSWORD)
    assert PASSWORD not in verifier
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, server_key = (base64.b64decode(part) for part in keys.split(":"))
    assert (method, int(iterations)) == ("SCRAM-SHA-256", 4096)
    salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), base64.b64decode(salt), 4096)
    assert hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest() == stored_key
    assert hmac.new(salted, b"Server Key", hashlib.sha256).digest() == server_key
    assert source_role.scram_verifier(PASSWORD) != verifier  # a fresh salt each time


def test_the_link_event_records_the_role_and_history_masks_its_password():
    payload = {
        "backend": "api", "postgres_service": "db", "source_fingerprint": "f", "secret_fingerprint": "g",
        "audience": ["api"], "kid": None, "url": None, "storage_database": "powersync_ps_1",
        "source_role": "dedicated", "source_role_name": "powersync_ps_1", "source_role_password": PASSWORD,
    }
    created = {"image": "i", "image_version": "1", "memory_mb": 1, "storage": "separate-database", "api_token": "t" * 40, "slot_prefix": "ps_ps_1_"}
    events = [
        ev.StoredEvent(1, "ps-1", 1, ev.INSTANCE_CREATED, 1, created, "", "", ""),
        ev.StoredEvent(2, "ps-1", 2, ev.BACKEND_LINKED, 1, payload, "", "", ""),
        ev.StoredEvent(3, "ps-1", 3, ev.BACKEND_UNLINKED, 1, {"backend": "api"}, "", "", ""),
    ]
    state = project("ps-1", events, until=2)
    assert (state.link.source_role, state.link.source_role_password) == ("powersync_ps_1", PASSWORD)
    assert source_role_text(state) == "dedicated (powersync_ps_1)"
    after = project("ps-1", events)
    assert after.link is None and after.last_source_role == "powersync_ps_1"  # dropped at unlink from this
    assert source_role_text(after) == "-"
    shown = masked_payload(payload)
    assert shown["source_role_password"] == "*****" and PASSWORD not in str(shown)
    assert source_role_text(linked()) == "superuser"
