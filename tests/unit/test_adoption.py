import pytest

from powersync_plugin.core import adoption
from powersync_plugin.core.errors import DomainError

RULES = "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM todos\n"
BASE = """replication:
  connections:
    - type: postgresql
      uri: !env PS_DATA_SOURCE_URI
      sslmode: disable
storage:
  type: postgresql
  uri: !env PS_DATA_SOURCE_URI
client_auth:
  audience: [jeeves]
  jwks:
    keys:
      - {kty: oct, alg: HS256, k: !env PS_SECRET_KEY_B64, kid: jeeves-dev}
api:
  port: 8080
"""


def test_inline_rules_are_kept_byte_for_byte_and_name_no_file():
    text = BASE + "sync_config:\n  content: |\n" + "".join("    " + line + "\n" for line in RULES.splitlines())
    assert adoption.rules_path(text) is None
    parsed = adoption.parse_config(text)
    assert parsed.rules == RULES and parsed.storage == "same-database" and parsed.kid == "jeeves-dev"


def test_rules_in_a_file_beside_the_config_are_read_from_it():
    text = BASE + "sync_config:\n  path: sync-rules.yaml\n"
    assert adoption.rules_path(text) == "sync-rules.yaml"
    parsed = adoption.parse_config(text, RULES)
    assert parsed.rules == RULES and "sync_config" not in parsed.extras
    with pytest.raises(DomainError, match="no rules the plugin can read"):
        adoption.parse_config(text)


def _with_keys(keys_yaml: str) -> str:
    text = BASE.replace(
        "      - {kty: oct, alg: HS256, k: !env PS_SECRET_KEY_B64, kid: jeeves-dev}\n", keys_yaml
    )
    return text + "sync_config:\n  path: r.yaml\n"


def test_other_jwks_keys_are_kept_after_the_managed_one_and_their_secrets_are_not_leftovers():
    from powersync_plugin.core import config_render
    from powersync_plugin.core.state import BackendLink, InstanceState

    text = _with_keys(
        "      - {kty: oct, alg: HS256, k: !env PS_OLD_SECRET_KEY_B64, kid: jeeves-old}\n"
        "      - {kty: oct, alg: HS256, k: !env PS_SECRET_KEY_B64, kid: jeeves-dev}\n"
    )
    parsed = adoption.parse_config(text, RULES)
    assert parsed.kid == "jeeves-dev" and parsed.referenced_env == {"PS_OLD_SECRET_KEY_B64"}
    env = ["PS_OLD_SECRET_KEY_B64", "PS_JEEVES_SECRET_KEY_B64", "PS_SECRET_KEY_B64"]
    assert adoption.leftover_keys(env, parsed.referenced_env) == ["PS_JEEVES_SECRET_KEY_B64"]

    link = BackendLink("jeeves", "db", "f", "f", ("jeeves",), "jeeves-dev", None, 1)
    state = InstanceState(
        name="jv", created=True, slot_prefix="powersync_", audience=("jeeves",), kid="jeeves-dev", link=link,
        storage="same-database", config_extras=config_render.to_json_safe(parsed.extras),
    )
    keys = config_render.desired_config(state)["client_auth"]["jwks"]["keys"]
    assert [(key["kid"], key["k"].name) for key in keys] == [
        ("jeeves-dev", "PS_SECRET_KEY_B64"), ("jeeves-old", "PS_OLD_SECRET_KEY_B64"),
    ]


@pytest.mark.parametrize("keys_yaml, message", [
    ("      - {kty: oct, alg: HS256, k: !env PS_OTHER_B64}\n", "exactly one HS256 key"),
    ("      - {kty: oct, alg: HS256, k: !env PS_SECRET_KEY_B64}\n      - {kty: oct, alg: HS256, k: c2VjcmV0}\n",
     "written inline"),
])
def test_jwks_the_plugin_cannot_manage_is_refused(keys_yaml, message):
    with pytest.raises(DomainError, match=message):
        adoption.parse_config(_with_keys(keys_yaml), RULES)


def test_an_adopted_slot_prefix_postgres_would_refuse_is_refused():
    rules = "sync_config:\n  content: |\n" + "".join("    " + line + "\n" for line in RULES.splitlines())
    named = BASE.replace("      sslmode: disable\n", "      sslmode: disable\n      slot_name_prefix: ps_jv_\n")
    assert adoption.parse_config(named + rules).slot_prefix == "ps_jv_"
    hostile = named.replace("ps_jv_", "\"x'; DROP TABLE t; --\"")
    with pytest.raises(DomainError, match="Invalid slot_name_prefix"):
        adoption.parse_config(hostile + rules)
