"""`status --all`: one line per instance, for a host of them at a glance: state, image version,
rules revision and whether the service runs it, readiness, replication lag.

The journal gives what each instance should be (its read-model row; the full fold only for the
instances that run, for their API token and rules bytes); one container listing gives what runs.
For a running instance, readiness and diagnostics come from the engine's own health check of its
container (adapters/health_check.py): one inspect, a few milliseconds, no process started. An
instance without a fresh report (its container started less than an interval ago, or its image
predates the check) is probed live instead, through one relay per container (a `docker exec` of
the image's node, exec_channel.py), a few at a time on threads, so a 2-core host is not flooded
with node processes. The CHECKED column says how old each answer is.
"""
from __future__ import annotations

import hashlib
import json
import sys
import threading
from dataclasses import dataclass
from typing import Optional

from powersync_plugin import read_side, settings
from powersync_plugin.adapters.docker_engine import DockerEngine
from powersync_plugin.adapters.journal import Journal
from powersync_plugin.adapters.powersync_api import summarize_diagnostics
from powersync_plugin.core.projector import project

# Whether the journal's current rules are the ones the service runs (ON SERVICE column).
ACTIVE, DEPLOYING, DIFFERS, NONE_ACTIVE, UNKNOWN = "active", "deploying", "differs", "none active", "unknown"


PROBE_TIMEOUT = 10  # seconds, as long as diagnostics are given


def probe_concurrency() -> int:
    """Requests in flight at once (POWERSYNC_STATUS_CONCURRENCY, default 4)."""
    return max(1, int(settings.seconds("POWERSYNC_STATUS_CONCURRENCY", 4)))


@dataclass(frozen=True)
class HostReads:
    """All the screen needs: the engine and the journal. Not the command's Services: a read
    builds no Dokku adapter, lock or reconciler (their imports were a third of its time)."""

    docker: DockerEngine
    journal: Journal


def show(output_format: str) -> None:
    """`status --all [--format json]`: print the screen."""
    rows = status_all(HostReads(DockerEngine(), Journal(settings.journal_path())))
    if output_format == "json":
        sys.stdout.write(json.dumps(rows, sort_keys=True) + "\n")
    elif not rows:
        sys.stderr.write(" !     There are no PowerSync instances\n")
    else:
        sys.stdout.write("".join(line + "\n" for line in lines(rows)))
    sys.stdout.flush()


def status_all(s: HostReads) -> list[dict]:
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
        unreported = _read_health_checks(s, running)
        if unreported:
            _probe(s, unreported)
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
        "checked_by": None,  # "health check" (the engine's latest answer) or "live probe"
        "checked_seconds_ago": None,
    }


def _read_health_checks(s: HostReads, running: list[tuple[dict, str]]) -> list[tuple[dict, str]]:
    """Fill the rows the engine's health check answers; return the others, to probe live."""
    # One inspect per instance, all at once: a few milliseconds each, waiting on the engine.
    # Plain threads: concurrent.futures (and the logging it imports) cost more than the wait.
    reports: list = [None] * len(running)

    def read(index: int) -> None:
        reports[index] = s.docker.health_report(running[index][1])

    threads = [threading.Thread(target=read, args=(index,)) for index in range(len(running))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    unreported = []
    for (row, container_id), report in zip(running, reports):
        if report is None:
            unreported.append((row, container_id))
            continue
        row["ready"] = report.ready
        row["checked_by"], row["checked_seconds_ago"] = "health check", round(report.age_seconds)
        _read_diagnostics(row, report.diagnostics, _current_content(s, row["name"]) if report.diagnostics else None)
    return unreported


def _current_content(s: HostReads, name: str) -> Optional[str]:
    state = project(name, s.journal.load(name))
    return state.current_rules.content if state.current_rules else None


def _probe(s: HostReads, running: list[tuple[dict, str]]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from powersync_plugin.adapters.powersync_api import PowerSyncApi

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
            row["checked_by"], row["checked_seconds_ago"] = "live probe", 0
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
    if deploying is not None and _same_rules(deploying, content):
        return DEPLOYING
    if active is None:
        return NONE_ACTIVE
    same = _same_rules(active, content)
    if same is None:
        return UNKNOWN  # a service that does not return the content: cannot tell
    return ACTIVE if same else DIFFERS


def _same_rules(section: dict, content: str) -> Optional[bool]:
    """The service's rules are its `content`, or (the engine's health check) their sha256."""
    if "content" in section:
        return section["content"] == content
    if "content_sha256" in section:
        return section["content_sha256"] == hashlib.sha256(content.encode()).hexdigest()
    return None


COLUMNS = (
    ("NAME", lambda row: row["name"]),
    ("STATE", lambda row: row["state"]),
    ("IMAGE", lambda row: row["image_version"]),
    ("RULES", lambda row: row["rules_revision"] or "-"),
    ("ON SERVICE", lambda row: row["rules_on_service"] or "-"),
    ("READY", lambda row: "-" if row["ready"] is None else ("yes" if row["ready"] else "no")),
    ("LAG", lambda row: "-" if row["lag_bytes"] is None else f"{row['lag_bytes']} B"),
    ("ERRORS", lambda row: "-" if not row["errors"] else str(row["errors"])),
    ("CHECKED", lambda row: _checked(row)),
)


def _checked(row: dict) -> str:
    if row["checked_by"] is None:
        return "-"
    return "now" if row["checked_by"] == "live probe" else f"{row['checked_seconds_ago']}s ago"


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
