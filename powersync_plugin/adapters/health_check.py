"""The Docker engine's own health check of an instance, and what `status --all` reads from it.

Probing a live instance means running a process in its container (a `docker exec` of node, about
90 ms on a 2-core host), and a host-wide screen paid that once per running instance. The derived
image instead carries a `HEALTHCHECK` (health-check.js): the engine runs it every interval,
keeps its last answers in the container's `State.Health`, and an inspect over the engine's socket
reads the latest in a few milliseconds. Dokku ignores the engine's health status (its deploys
gate on app.json's startup checks), so the check changes nothing in how Dokku deploys or routes.

A report counts only while it is fresh (at most two intervals plus a timeout old, and taken since
the container last started); otherwise, and for images built before this check existed, the
caller probes live.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional

from powersync_plugin import settings

SCRIPT = Path(__file__).with_name("health-check.js")
SCRIPT_NAME = SCRIPT.name
TIMEOUT_SECONDS = 10
START_PERIOD_SECONDS = 60  # the service's migrations and first connect: failures then do not count
_NANOSECONDS = 1_000_000_000
_STAMP = re.compile(r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?P<fraction>\.\d+)?(?P<offset>Z|[+-]\d\d:\d\d)$")


def interval_seconds() -> int:
    """POWERSYNC_HEALTH_INTERVAL (default 30 s): how often the engine runs the check. Each run is a
    short node process in the instance's container; the value is part of the derived image."""
    return max(2, int(settings.seconds("POWERSYNC_HEALTH_INTERVAL", 30)))


def dockerfile_instruction(port: int) -> str:
    return (f"HEALTHCHECK --interval={interval_seconds()}s --timeout={TIMEOUT_SECONDS}s "
            f"--start-period={START_PERIOD_SECONDS}s --retries=3 "
            f'CMD ["node", "/app/{SCRIPT_NAME}", "{port}"]')


@dataclass(frozen=True)
class HealthReport:
    ready: bool
    diagnostics: Optional[dict]  # summarize_diagnostics' input shape; rules as content_sha256
    checked_at: str  # the engine's timestamp of the check
    age_seconds: float


def read_report(attrs: dict, now: Optional[float] = None) -> Optional[HealthReport]:
    """The latest fresh report in a container inspect, or None (no check configured, none run yet
    since the container started, too old, or an answer that is not the script's)."""
    state, config = attrs.get("State") or {}, attrs.get("Config") or {}
    check = config.get("Healthcheck") or {}
    log = (state.get("Health") or {}).get("Log") or []
    if not log or not state.get("Running") or SCRIPT_NAME not in " ".join(check.get("Test") or []):
        return None
    latest = log[-1]
    began, ended, started_at = (_epoch(latest.get("Start")), _epoch(latest.get("End")), _epoch(state.get("StartedAt")))
    if began is None or ended is None or started_at is None or began < started_at:
        return None  # not run yet since the container (re)started
    interval = (check.get("Interval") or 30 * _NANOSECONDS) / _NANOSECONDS
    timeout = (check.get("Timeout") or TIMEOUT_SECONDS * _NANOSECONDS) / _NANOSECONDS
    age = (time.time() if now is None else now) - ended
    if age > 2 * interval + timeout:
        return None
    try:
        answer = json.loads((latest.get("Output") or "").strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("ready"), bool):
        return None
    diagnostics = answer.get("diagnostics") if isinstance(answer.get("diagnostics"), dict) else None
    return HealthReport(ready=answer["ready"], diagnostics=diagnostics, checked_at=latest["End"], age_seconds=max(age, 0.0))


def _epoch(stamp: Optional[str]) -> Optional[float]:
    """The engine's RFC 3339 timestamps carry nanoseconds, more than datetime parses."""
    match = _STAMP.match(stamp or "")
    if match is None or match["time"].startswith("0001-"):  # Go's zero time: never happened
        return None
    offset = "+00:00" if match["offset"] == "Z" else match["offset"]
    fraction = (match["fraction"] or "")[:7]  # the dot and at most six digits
    return datetime.fromisoformat(match["time"] + fraction + offset).timestamp()
