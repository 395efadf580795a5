"""Read-only commands, kept light: no Docker SDK import, one journal read."""
from __future__ import annotations

from typing import Optional

from powersync_plugin import settings
from powersync_plugin.adapters.docker_engine import quick_container_status
from powersync_plugin.adapters.journal import Journal
from powersync_plugin.core.decisions import require_live
from powersync_plugin.core.projector import project
from powersync_plugin.core.state import InstanceState
from powersync_plugin.core.errors import DomainError
from powersync_plugin.queries import HistoryRow, history_rows, info_fields, masked_payload, parse_rules_revision, rules_diff


def _journal() -> Journal:
    return Journal(settings.journal_path())


def state(name: str) -> InstanceState:
    return project(name, _journal().load(name))


def info(name: str) -> dict[str, str]:
    current = state(name)
    require_live(current)
    status = quick_container_status(f"{name}.web.1") if current.link else "not deployed (no backend linked)"
    return info_fields(current, status)


def exists(name: str) -> bool:
    return state(name).live


def linked_backend(name: str) -> Optional[str]:
    current = state(name)
    require_live(current)
    return current.link.backend if current.link else None


def list_instances() -> list[dict[str, str]]:
    journal = _journal()
    rows = []
    for stream in journal.streams():
        current = project(stream, journal.load(stream))
        if current.live:
            rows.append({
                "name": stream,
                "version": current.image_version,
                "linked_backend": current.link.backend if current.link else "",
                "rules_revision": f"r{current.current_rules.number}" if current.current_rules else "",
            })
    return rows


def instances_linked_to(app: str) -> list[str]:
    return [row["name"] for row in list_instances() if row["linked_backend"] == app]


def history(name: str, rules_only: bool) -> list[HistoryRow]:
    return history_rows(name, _journal().load(name), rules_only)


def revision_detail(name: str, revision: int) -> dict:
    events = _journal().load(name)
    chosen = next((event for event in events if event.version == revision), None)
    if chosen is None:
        raise DomainError(f"{name} has no revision {revision} (it has 1..{len(events)})")
    folded = project(name, events, until=revision)
    return {
        "event": {
            "revision": chosen.version,
            "type": chosen.type,
            "schema": chosen.schema,
            "recorded_at": chosen.recorded_at,
            "actor": chosen.actor,
            "command": chosen.command,
            "payload": masked_payload(dict(chosen.payload)),
        },
        "state": info_fields(folded, "-"),
    }


def rules_diff_between(name: str, spec: str) -> list[str]:
    current = state(name)
    left, _, right = spec.partition("..")
    a = current.rules_revision(parse_rules_revision(left))
    b = current.rules_revision(parse_rules_revision(right)) if right else current.current_rules
    if a is None or b is None:
        raise DomainError(f"Unknown rules revision in {spec!r}: `dokku powersync:history {name} --rules` lists them")
    return rules_diff(a.content, b.content, f"r{a.number}", f"r{b.number}")
