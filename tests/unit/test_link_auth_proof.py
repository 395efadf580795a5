"""Only the service's "no sync rules available" to an authenticated stream counts as an accepted
token when no rules are active; every other refusal still fails the link."""
import json

import pytest

from powersync_plugin.adapters.docker_engine import HttpResult
from powersync_plugin.linking import _no_rules_yet


def answer(status: int, code: str) -> HttpResult:
    return HttpResult(status=status, body=json.dumps({"error": {"code": code, "status": status}}))


@pytest.mark.parametrize("result, accepted", [
    (answer(500, "PSYNC_S2302"), True),
    (answer(500, "PSYNC_S2001"), False),
    (answer(401, "PSYNC_S2101"), False),
    (answer(401, "PSYNC_S2302"), False),
    (HttpResult(status=500, body="PSYNC_S2302"), False),
    (HttpResult(status=500, body="[1]"), False),
    (HttpResult(status=0, body="", error="container unavailable"), False),
])
def test_only_no_rules_after_authentication_counts(result, accepted):
    assert _no_rules_yet(result) is accepted
