"""The export file (core/transfer_format.py): versioned, checked, refused whole when it is not
exactly what an export wrote; what an export withholds (transfer.py); the import event's fold."""
import copy
import json

import pytest

from powersync_plugin.core import events as ev
from powersync_plugin.core import transfer_format as tf
from powersync_plugin.core.projector import project
from powersync_plugin.read_model import history_rows, masked_payload
from powersync_plugin.redact import MASK, Redactor, env_for_config_secrets

RULES = "bucket_definitions:\n  all:\n    data:\n      - SELECT * FROM todos\n"


def stored(rows, stream="ps1"):
    return [
        ev.StoredEvent(index, stream, index, type_, 1, payload, f"2026-01-0{min(index, 9)}T00:00:00Z", f"actor{index}", f"dokku cmd{index}")
        for index, (type_, payload) in enumerate(rows, start=1)
    ]


def linked_stream():
    return stored([
        ("instance.created", {"image": "journeyapps/powersync-service", "image_version": "1.25.0", "memory_mb": 400,
                              "storage": "separate-database", "api_token": "old-host-token-" + "x" * 20, "slot_prefix": "ps1_"}),
        ("deploy.succeeded", {"cause": 1}),
        ("rules.set", {"content": RULES, "digest": "d" * 64, "description": "Set rules (1 definitions)"}),
        ("backend.linked", {"backend": "api", "postgres_service": "db", "source_fingerprint": "a" * 16,
                            "secret_fingerprint": "b" * 16, "audience": ["api"], "kid": "k1", "url": "http://ps1.example.test",
                            "storage_database": "ps1_storage", "source_sslmode": "disable", "storage_sslmode": "disable"}),
        ("deploy.succeeded", {"cause": 4}),
        ("setting.changed", {"key": "telemetry", "value": "off"}),
    ])


def document(events=None, **overrides):
    events = events if events is not None else linked_stream()
    rows = [tf.event_row(event) for event in events]
    built = tf.build(
        "ps1", rows, project("ps1", events), exported_at="2026-02-01T00:00:00Z", exported_from="old-host",
        journal_schema="0002", domains=["ps1.example.test"], withheld=[], env_required=[],
    )
    built.update(overrides)
    if overrides:
        built["digest"] = tf.digest(built)
    return built


def test_a_round_trip_keeps_every_event_its_version_time_actor_and_command():
    events = linked_stream()
    parsed = tf.parse(tf.serialize(document(events)))
    assert parsed.name == "ps1" and parsed.format_version == tf.FORMAT_VERSION
    assert [(e.version, e.type, e.schema, dict(e.payload), e.recorded_at, e.actor, e.command) for e in parsed.events] == [
        (e.version, e.type, e.schema, dict(e.payload), e.recorded_at, e.actor, e.command) for e in events
    ]
    assert parsed.state.current_rules.content == RULES and parsed.state.telemetry is False
    assert parsed.domains == ("ps1.example.test",) and parsed.settings["rules_revision"] == "r1"


def test_a_file_of_a_newer_format_is_refused_saying_to_upgrade():
    with pytest.raises(tf.ExportFileError, match=r"export format 2, written by a newer dokku-powersync; .* up to 1: upgrade"):
        tf.parse(json.dumps(document(format_version=2)))


@pytest.mark.parametrize("cut", [1, 10, 200, -2])
def test_a_truncated_file_is_refused_as_corrupt_or_truncated(cut):
    text = tf.serialize(document())
    with pytest.raises(tf.ExportFileError, match=r"not a complete export \(corrupt or truncated"):
        tf.parse(text[:cut])


def test_an_edited_file_is_refused_by_its_digest():
    edited = document()
    edited["events"][2]["payload"]["content"] = "bucket_definitions: {}\n"
    with pytest.raises(tf.ExportFileError, match="digest does not match"):
        tf.parse(json.dumps(edited))
    dropped = document()
    dropped["events"].pop()
    with pytest.raises(tf.ExportFileError, match="digest does not match"):
        tf.parse(json.dumps(dropped))


@pytest.mark.parametrize("text, message", [
    ("", "No export on stdin"),
    ('{"hello": 1}', "not a dokku-powersync export"),
    ('[1, 2]', "not a dokku-powersync export"),
    ('{"format": "dokku-powersync-export", "format_version": "1"}', "no valid format_version"),
])
def test_what_is_not_an_export_is_refused(text, message):
    with pytest.raises(tf.ExportFileError, match=message):
        tf.parse(text)


def test_an_event_of_a_newer_schema_or_unknown_type_is_refused_before_anything_is_written():
    events = linked_stream()
    newer = document(events)
    newer["events"][2]["schema"] = 2
    newer["digest"] = tf.digest(newer)
    with pytest.raises(tf.ExportFileError, match="schema 2, written by a newer dokku-powersync"):
        tf.parse(json.dumps(newer))
    unknown = document(events)
    unknown["events"][5]["type"] = "setting.renamed"
    unknown["digest"] = tf.digest(unknown)
    with pytest.raises(tf.ExportFileError, match="newer dokku-powersync"):
        tf.parse(json.dumps(unknown))


def test_events_out_of_order_or_a_dead_instance_are_refused():
    events = linked_stream()
    shuffled = document(events)
    shuffled["events"][1], shuffled["events"][2] = shuffled["events"][2], shuffled["events"][1]
    shuffled["digest"] = tf.digest(shuffled)
    with pytest.raises(tf.ExportFileError, match="Event 2 of the file is malformed or out of order"):
        tf.parse(json.dumps(shuffled))
    destroyed = stored([(e.type, dict(e.payload)) for e in events[:3]] + [("instance.destroyed", {}), ("deploy.succeeded", {"cause": 4})])
    with pytest.raises(tf.ExportFileError, match="not live at its last event"):
        tf.parse(json.dumps(document(destroyed)))


def test_an_export_of_an_older_journal_imports_with_its_payloads_as_they_were():
    """Payloads as earlier plugins wrote them: a link without sslmodes or storage database, no
    telemetry setting. The events are kept as written; the fold (with its upcasters) reads them."""
    older = stored([
        ("instance.created", {"image": "journeyapps/powersync-service", "image_version": "1.20.0", "memory_mb": 512,
                              "storage": "same-database", "api_token": tf.WITHHELD, "slot_prefix": "ps1_"}),
        ("deploy.succeeded", {"cause": 1}),
        ("backend.linked", {"backend": "api", "postgres_service": None, "source_fingerprint": tf.WITHHELD,
                            "secret_fingerprint": tf.WITHHELD, "audience": ["api"], "kid": None, "url": None}),
        ("deploy.succeeded", {"cause": 3}),
        ("rules.set", {"content": RULES, "digest": "d" * 64}),
        ("deploy.succeeded", {"cause": 5}),
    ])
    parsed = tf.parse(tf.serialize(document(older)))
    assert [dict(e.payload) for e in parsed.events] == [dict(e.payload) for e in older]
    assert parsed.state.link.source_sslmode == "disable" and parsed.state.telemetry is None
    assert parsed.state.current_rules.number == 1 and parsed.state.image_version == "1.20.0"


def test_an_older_format_is_brought_to_the_current_one_by_its_upcaster(monkeypatch):
    """The mechanism a format 2 will use: a format-1 file passes through _UPCASTERS[1]."""
    seen = []

    def upcast_v1_to_v2(doc):
        seen.append(doc["format_version"])
        return {**doc, "format_version": 2, "domains": [d.upper() for d in doc["domains"]]}

    text = tf.serialize(document())
    monkeypatch.setattr(tf, "FORMAT_VERSION", 2)
    monkeypatch.setattr(tf, "_UPCASTERS", {1: upcast_v1_to_v2})
    parsed = tf.parse(text)
    assert seen == [1] and parsed.format_version == 1 and parsed.domains == ("PS1.EXAMPLE.TEST",)


def test_the_import_event_starts_the_instance_unlinked_with_a_new_token_and_shows_as_observed():
    events = linked_stream()
    imported = stored([(e.type, dict(e.payload)) for e in events] + [
        ("instance.imported", {"from_host": "old-host", "exported_at": "2026-02-01T00:00:00Z", "format_version": 1,
                               "api_token": "new-token-" + "y" * 20, "withheld": 3}),
    ])
    state = project("ps1", imported)
    assert state.live and state.link is None and state.api_token == "new-token-" + "y" * 20
    assert state.audience == ("api",) and state.kid == "k1" and state.current_rules.content == RULES
    assert state.last_postgres_service is None and state.pending_intent is None
    rows = history_rows("ps1", imported)
    assert [row.as_json() for row in rows[:-1]] == [row.as_json() for row in history_rows("ps1", events)]
    assert rows[-1].status == "observed" and rows[-1].description.startswith("Imported from old-host (export of 2026-02-01")
    assert masked_payload(dict(imported[-1].payload))["api_token"] == MASK  # history --show


def test_adopted_extras_written_inline_under_secret_names_are_read_from_env_vars_instead():
    extras = {
        "client_auth": {"supabase_jwt_secret": "inline-secret-value", "jwks": {"keys": [{}, {"kid": "other", "k": {"$env": "PS_OTHER"}}]}},
        "storage": {"max_pool_size": 8, "password": "pw-inline-123"},
        "api": {"tokens_extra": ["t-one-123456", "t-two-123456"]},
    }
    masked, moved = env_for_config_secrets(copy.deepcopy(extras))
    assert "inline-secret-value" not in json.dumps(masked) and "pw-inline-123" not in json.dumps(masked)
    assert masked["client_auth"]["supabase_jwt_secret"] == {"$env": "PS_CLIENT_AUTH_SUPABASE_JWT_SECRET"}
    assert masked["client_auth"]["jwks"] == extras["client_auth"]["jwks"]  # kid, kty are no secrets; k reads !env already
    assert masked["storage"] == {"max_pool_size": 8, "password": {"$env": "PS_STORAGE_PASSWORD"}}
    assert moved == [
        ("client_auth.supabase_jwt_secret", "PS_CLIENT_AUTH_SUPABASE_JWT_SECRET"), ("storage.password", "PS_STORAGE_PASSWORD"),
        ("api.tokens_extra[0]", "PS_API_TOKENS_EXTRA_0"), ("api.tokens_extra[1]", "PS_API_TOKENS_EXTRA_1"),
    ]


def test_the_export_withholds_tokens_fingerprints_and_secrets_in_commands_and_reasons():
    from powersync_plugin.transfer import _withheld_rows

    failing = stored([(e.type, dict(e.payload)) for e in linked_stream()] + [
        ("rules.set", {"content": RULES + "#\n", "digest": "e" * 64}),
        ("deploy.failed", {"cause": 7, "reason": "refused key-of-the-backend-123 at postgresql://u:hunter22secret@db/x"}),
    ])
    redactor = Redactor()
    redactor.add("key-of-the-backend-123")
    rows, withheld, env_required = _withheld_rows(failing, redactor)
    text = json.dumps(rows)
    for secret in ("old-host-token-", "a" * 16, "b" * 16, "key-of-the-backend-123", "hunter22secret"):
        assert secret not in text
    assert withheld == [
        "revision 1 (instance.created) api_token", "revision 4 (backend.linked) secret_fingerprint",
        "revision 4 (backend.linked) source_fingerprint",
    ]
    assert env_required == set()
    assert [row["version"] for row in rows] == list(range(1, 9)) and rows[2]["payload"]["content"] == RULES


def test_an_adopted_instance_exports_its_extras_without_inline_secrets_and_lists_the_vars_it_needs():
    from powersync_plugin.transfer import _withheld_rows

    adopted = stored([("instance.adopted", {
        "adopted_from": "ps1", "image": "journeyapps/powersync-service", "image_version": "1.25.0", "digest": "sha256:x",
        "memory_mb": 400, "storage": "same-database", "api_token": "adopted-token-123456", "slot_prefix": "powersync_",
        "rules": RULES, "rules_digest": "d" * 64, "backend": "api", "postgres_service": "db",
        "source_fingerprint": "a" * 16, "secret_fingerprint": "b" * 16, "audience": ["api"], "kid": "api-dev", "url": None,
        "source_sslmode": "disable", "storage_sslmode": "disable", "cleanup_keys": [], "cleanup_mounts": [],
        "extras": {"client_auth": {"supabase_jwt_secret": "inline-jwt-secret", "jwks": {"keys": [{}, {"kid": "b", "k": {"$env": "PS_B_KEY"}}]}}},
    })])
    rows, withheld, env_required = _withheld_rows(adopted, Redactor())
    text = json.dumps(rows)
    assert "inline-jwt-secret" not in text and "adopted-token-123456" not in text
    assert env_required == {"PS_B_KEY", "PS_CLIENT_AUTH_SUPABASE_JWT_SECRET"}
    assert "revision 1 (instance.adopted) extras.client_auth.supabase_jwt_secret (the config reads it from " \
           "PS_CLIENT_AUTH_SUPABASE_JWT_SECRET)" in withheld
    # the fold on the importing host renders the config from the masked extras: !env, not the value
    state = project("ps1", stored([("instance.adopted", rows[0]["payload"])]))
    assert state.config_extras["client_auth"]["supabase_jwt_secret"] == {"$env": "PS_CLIENT_AUTH_SUPABASE_JWT_SECRET"}


def test_the_last_guard_refuses_an_export_that_still_holds_a_known_secret():
    from powersync_plugin.core.errors import DomainError
    from powersync_plugin.transfer import _require_no_secret

    secret = "backend-secret-key-value"
    events = stored([(e.type, dict(e.payload)) for e in linked_stream()] + [
        ("rules.set", {"content": RULES + f"# {secret}\n", "digest": "e" * 64}),
    ])
    clean = document(events[:-1])
    _require_no_secret("ps1", clean, [secret])
    with pytest.raises(DomainError, match=r"would carry a secret .* in revision\(s\) 7: nothing written"):
        _require_no_secret("ps1", document(events), [secret])


def test_the_new_link_uses_a_dedicated_source_role_when_the_exported_link_had_one():
    from powersync_plugin.transfer import role_mode

    plain = linked_stream()
    assert role_mode(project("ps1", plain)) == "superuser"
    dedicated = stored([(e.type, {**e.payload, "source_role_name": "ps1_role"} if e.type == "backend.linked" else dict(e.payload))
                        for e in plain])
    assert role_mode(project("ps1", dedicated)) == "dedicated"
    unlinked = stored([(e.type, dict(e.payload)) for e in dedicated] + [("backend.unlinked", {"backend": "api"}), ("deploy.succeeded", {"cause": 7})])
    assert role_mode(project("ps1", unlinked)) == "superuser"
