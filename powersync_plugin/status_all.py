"""`status --all`: one line per instance, for a host of them at a glance: state, image version,
rules revision and whether the service runs it, readiness, replication lag.

The journal gives what each instance should be (its read-model row; the full fold only for the
instances that run, for their API token and rules bytes); one container listing gives what runs.
The running instances are then probed (readiness and diagnostics, through one relay per container:
a `docker exec` of the image's node, exec_channel.py) a few at a time on threads, so the screen
takes about the slowest probes rather than the sum of all of them, and a 2-core host is not
flooded with node processes.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from powersync_plugin import read_side, settings
from powersync_plugin.adapters.powersync_api import PowerSyncApi, summarize_diagnostics
from powersync_plugin.core.projector import project
from powersync_plugin.services import Services

# Whether the journal's current rules are the ones the service runs (ON SERVICE column).
ACTIVE, DEPLOYING, DIFFERS, NONE_ACTIVE, UNKNOWN = "active", "deploying", "differs", "none active", "unknown"


PROBE_TIMEOUT = 10  # seconds, as long as diagnostics are given


def probe_concurrency() -> int:
    """Requests in flight at once (POWERSYNC_STATUS_CONCURRENCY, default 4)."""
    return max(1, int(settings.seconds("POWERSYNC_STATUS_CONCURRENCY", 4)))


def status_all(s: Services) -> list[dict]:
    rows = [_row(listed) for listed in read_side.list_instances()]
    containers = s.docker.web_containers() if rows else {}
    running = []
    for row in rows:
        container = containers.get(row["name"])
        if container is not None:
            row["state"] = "running" if container.running else "stopped"
            row["running_image"] = container.image
            if container.running:
                running.append((row, container.id))
            else:
                row["ready"] = False
        elif row["linked_backend"]:
            row["state"], row["ready"] = "missing", False  # linked, so deployed once: its container is gone
    if running:
        _probe(s, running)
    return rows


def _row(listed: dict) -> dict:
    return {
        "name": listed["name"],
        "state": "not deployed",
        "image_version": listed["version"],
        "running_image": None,
        "linked_backend": listed["linked_backend"] or None,
        "rules_revision": listed["rules_revision"] or None,
        "rules_on_service": None,
        "ready": None,
        "lag_bytes": None,
        "errors": None,
    }


def _probe(s: Services, running: list[tuple[dict, str]]) -> None:
    apis = []
    for row, container_id in running:
        state = project(row["name"], s.journal.load(row["name"]))
        content = state.current_rules.content if state.current_rules else None
        apis.append((row, PowerSyncApi(s.docker, container_id, state.api_token), content))
    with ThreadPoolExecutor(max_workers=probe_concurrency(), thread_name_prefix="status") as pool:
        # A probe waits its turn behind others on a loaded host: an answer late is still the answer.
        # Both requests of an instance go through its one relay: the second costs milliseconds.
        probes = [pool.submit(lambda api: (api.readiness(PROBE_TIMEOUT), api.diagnostics(True)), api) for _, api, _ in apis]
        for (row, _, content), probe in zip(apis, probes):
            ready, found = probe.result()
            row["ready"] = ready.ok
            _read_diagnostics(row, found, content)


def _read_diagnostics(row: dict, payload: Optional[dict], content: Optional[str]) -> None:
    if payload is None:
        row["rules_on_service"] = UNKNOWN
        return
    summary = summarize_diagnostics(payload)
    row["lag_bytes"] = summary["active-rules"]["lag_bytes"]
    row["errors"] = len(summary["replication-errors"]) + len(summary["active-rules"]["errors"])
    row["rules_on_service"] = rules_on_service(payload, content)


def rules_on_service(payload: dict, content: Optional[str]) -> Optional[str]:
    """Compare the journal's current rules with the service's active and deploying ones, byte for
    byte (the service too starts a reprocess on any byte of difference)."""
    if content is None:
        return None  # no rules in the journal: nothing to compare
    data = payload.get("data", payload) if isinstance(payload, dict) else {}
    active = data.get("active_sync_rules") if isinstance(data.get("active_sync_rules"), dict) else None
    deploying = data.get("deploying_sync_rules") if isinstance(data.get("deploying_sync_rules"), dict) else None
    if deploying is not None and deploying.get("content") == content:
        return DEPLOYING
    if active is None:
        return NONE_ACTIVE
    if "content" not in active:
        return UNKNOWN  # a service that does not return the content: cannot tell
    return ACTIVE if active["content"] == content else DIFFERS


COLUMNS = (
    ("NAME", lambda row: row["name"]),
    ("STATE", lambda row: row["state"]),
    ("IMAGE", lambda row: row["image_version"]),
    ("RULES", lambda row: row["rules_revision"] or "-"),
    ("ON SERVICE", lambda row: row["rules_on_service"] or "-"),
    ("READY", lambda row: "-" if row["ready"] is None else ("yes" if row["ready"] else "no")),
    ("LAG", lambda row: "-" if row["lag_bytes"] is None else f"{row['lag_bytes']} B"),
    ("ERRORS", lambda row: "-" if not row["errors"] else str(row["errors"])),
)


def lines(rows: list[dict]) -> list[str]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    tally = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
    table = [[header for header, _ in COLUMNS]] + [[cell(row) for _, cell in COLUMNS] for row in rows]
    widths = [max(len(line[index]) for line in table) + 2 for index in range(len(COLUMNS))]
    return [f"=====> PowerSync instances: {len(rows)} ({tally})"] + [
        "".join(value.ljust(width) for value, width in zip(line, widths)).rstrip() for line in table
    ]
