from powersync_plugin.redact import MASK, Redactor


def test_known_secrets_dsn_passwords_and_tokens_are_masked():
    redactor = Redactor()
    redactor.add("super-secret-key-value")
    text = (
        "key super-secret-key-value uri postgresql://postgres:pw1234567@dokku-postgres-db:5432/db "
        "Authorization: Bearer abcdefghijklmnop token eyJhbGciOi.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    )
    out = redactor.text(text)
    for leaked in ("super-secret-key-value", "pw1234567", "abcdefghijklmnop", "eyJhbGciOi"):
        assert leaked not in out
    assert out.count(MASK) == 4


def test_sensitive_config_arguments_lose_their_values():
    redactor = Redactor()
    assert redactor.argument("PS_SECRET_KEY_B64=abc") == f"PS_SECRET_KEY_B64={MASK}"
    assert redactor.argument("POWERSYNC_CONFIG_B64=abc") == f"POWERSYNC_CONFIG_B64={MASK}"
    assert redactor.argument("NODE_OPTIONS=--max-old-space-size=320") == "NODE_OPTIONS=--max-old-space-size=320"


def test_history_show_masks_adopted_extras_that_are_secrets():
    """An `instance.adopted` payload as powersync_plugin/adoption.py records it (extras JSON-safe,
    `!env` as {"$env": NAME}): `history --show` must not print secret-looking values."""
    from powersync_plugin.read_model import masked_payload

    payload = {
        "adopted_from": "jeeves-powersync", "backend": "jeeves", "api_token": "t" * 32,
        "secret_fingerprint": "abc123", "rules": "streams: {}\n", "rules_digest": "d" * 64,
        "extras": {
            "client_auth": {"jwks": {"keys": [{}, {"kty": "oct", "alg": "HS256", "kid": "other", "k": {"$env": "PS_OTHER_KEY"}}]},
                            "jwks_uri": "https://auth.example.com/jwks"},
            "storage": {"max_pool_size": 8, "Password": "hunter2-inline"},
            "webhooks": [{"url": "https://hooks.example.com", "auth": {"Api-Token": "tok-inline-123"}}],
            "telemetry": {"disable_telemetry_sharing": True, "prometheus_port": 9464},
            "vault": {"client_secret": "shh-inline", "signing_key": "sk-inline", "endpoint": {"$env": "PS_VAULT_ENDPOINT"}},
        },
    }
    shown = masked_payload(payload)
    text = repr(shown)
    for leaked in ("hunter2-inline", "tok-inline-123", "shh-inline", "sk-inline", "PS_OTHER_KEY", "PS_VAULT_ENDPOINT"):
        assert leaked not in text
    extras = shown["extras"]
    # what is not secret stays readable
    assert extras["storage"]["max_pool_size"] == 8
    assert extras["telemetry"] == {"disable_telemetry_sharing": True, "prometheus_port": 9464}
    assert extras["client_auth"]["jwks_uri"] == "https://auth.example.com/jwks"
    assert extras["webhooks"][0]["url"] == "https://hooks.example.com"
    assert extras["vault"]["endpoint"] == MASK and extras["storage"]["Password"] == MASK
    assert shown["secret_fingerprint"] == "abc123"  # the payload's own fields keep their rules
    assert payload["extras"]["storage"]["Password"] == "hunter2-inline"  # the stored payload is untouched


def test_a_mask_function_sees_each_secret_it_replaces():
    """The tests' failure output masks with a length and digest (tests/secrets_in_output.py):
    each pattern hands the mask the secret alone, not its surroundings."""
    redactor = Redactor()
    redactor.add("super-secret-key-value")
    seen = []

    def mask(secret: str) -> str:
        seen.append(secret)
        return f"<{len(secret)}>"

    out = redactor.text(
        "super-secret-key-value postgres://u:pw1234567@h/db Bearer abcdefghijklmnop "
        "eyJhbGciOi.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", mask=mask,
    )
    assert seen == ["super-secret-key-value", "pw1234567", "abcdefghijklmnop", "eyJhbGciOi.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"]
    assert out == "<22> postgres://u:<9>@h/db Bearer <16> <39>"
