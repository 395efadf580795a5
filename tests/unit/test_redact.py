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
