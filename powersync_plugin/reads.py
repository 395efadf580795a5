"""Read-only commands, kept light: no Docker SDK import, one journal read."""
from __future__ import annotations

from typing import Optional

from powersync_plugin import settings
from powersync_plugin.adapters.docker_engine import quick_container_status
from powersync_plugin.adapters.journal import Journal
from powersync_plugin.core.decisions import require_live
from powersync_plugin.core.projector import project
from powersync_plugin.core.state import InstanceState
from powersync_plugin.queries import HistoryRow, history_rows, info_fields


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
