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
