"""The read side: info, list, exists, links and history, kept light (no Docker SDK or SQLAlchemy
import, one journal read), as read commands run often and should answer fast.

Only the journal adapter is imported up front: `list`, `exists` and `links` read the stored
summaries and need nothing else; the fold, the presenters and the Docker status probe are
imported by the functions that use them (each costs milliseconds a plain read would pay).
"""
from __future__ import annotations

import json
from typing import Optional

from powersync_plugin import settings
from powersync_plugin.adapters.journal import Journal
from powersync_plugin.core.errors import DomainError


def _journal() -> Journal:
    return Journal(settings.journal_path())


def state(name: str):
    from powersync_plugin.core.projector import project

    return project(name, _journal().load(name))


def summary(name: str, journal: Optional[Journal] = None) -> dict:
    """The instance's read-model row; refolded from the events (and stored) when missing or stale."""
    journal = journal or _journal()
    found = journal.summaries(name).get(name)
    if found and found[0] == found[1]:
        row = json.loads(found[2])
        if {"source-role", "compact-schedule"} <= set(row["fields"]):  # rows stored before the newest fields lack them: refold
            return row
    from powersync_plugin.core.projector import project
    from powersync_plugin.read_model import summary_json

    current = project(name, journal.load(name))
    text = summary_json(current)
    if current.version:
        journal.save_summary(name, current.version, text)
    return json.loads(text)


def _require_live(name: str, row: dict) -> None:
    if not row["live"]:
        from powersync_plugin.core.decisions import require_live
        from powersync_plugin.core.state import InstanceState

        # The same refusal as the write path: "was destroyed" or "does not exist".
        renamed_to = row.get("renamed_to")  # summaries stored before renames existed lack the key
        require_live(InstanceState(
            name=name, created=row["destroyed"] or bool(renamed_to), destroyed=row["destroyed"], renamed_to=renamed_to,
        ))


def info(name: str) -> dict[str, str]:
    from powersync_plugin.adapters.docker_socket import quick_container_status

    row = summary(name)
    _require_live(name, row)
    fields = dict(row["fields"])
    fields["status"] = quick_container_status(f"{name}.web.1") if row["linked"] else "not deployed (no backend linked)"
    return fields


def exists(name: str) -> bool:
    return summary(name)["live"]


def linked_backend(name: str) -> Optional[str]:
    row = summary(name)
    _require_live(name, row)
    return row["fields"]["linked-backend"] if row["linked"] else None


def list_instances() -> list[dict[str, str]]:
    journal = _journal()
    stored = journal.summaries()
    rows = []
    for stream in journal.streams():
        found = stored.get(stream)
        row = json.loads(found[2]) if found and found[0] == found[1] else summary(stream, journal)
        if row["live"]:
            fields = row["fields"]
            rows.append({
                "name": stream,
                "version": fields["image-version"],
                "linked_backend": fields["linked-backend"] if row["linked"] else "",
                "rules_revision": fields["rules-revision"] if fields["rules-revision"] != "-" else "",
            })
    return rows


def instances_linked_to(app: str) -> list[str]:
    return [row["name"] for row in list_instances() if row["linked_backend"] == app]


def history(name: str, rules_only: bool, limit: Optional[int] = None) -> list:
    """The last `limit` rows (all when None), read from the tail of the stream only."""
    from powersync_plugin.read_model import LINK_CLOSING, LINK_OPENING, RULES_CARRIERS, history_rows

    journal = _journal()
    if limit is None:
        return history_rows(name, journal.load(name), rules_only)
    start = journal.history_window(name, limit, RULES_CARRIERS if rules_only else None)
    rows = history_rows(
        name, journal.load_from(name, start), rules_only,
        rules_before=journal.count_before(name, RULES_CARRIERS, start),
        link_at_start=journal.link_before(name, start, LINK_OPENING, LINK_CLOSING),
    )
    return rows[-limit:]


def revision_detail(name: str, revision: int) -> dict:
    from powersync_plugin.core.projector import project
    from powersync_plugin.read_model import info_fields, masked_payload

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


def rules_content(name: str, number: Optional[int]) -> str:
    """The rules text of revision `number` (None: the rules in effect), exactly as set-rules stored it."""
    from powersync_plugin.core.decisions import require_live

    current = state(name)
    require_live(current)
    if not current.rules_history:
        raise DomainError(f"{name} has no rules yet: set them with `dokku powersync:set-rules {name} < sync-rules.yaml`")
    if number is None:
        if current.current_rules is None:
            raise DomainError(
                f"{name} has no rules in effect (no revision deployed): "
                f"`dokku powersync:history {name} --rules` lists them, --rev rN prints one"
            )
        return current.current_rules.content
    revision = current.rules_revision(number)
    if revision is None:
        raise DomainError(
            f"{name} has no rules revision r{number} (it has r1..r{len(current.rules_history)}): "
            f"`dokku powersync:history {name} --rules` lists them"
        )
    return revision.content


def rules_diff_between(name: str, spec: str) -> list[str]:
    from powersync_plugin.read_model import parse_rules_revision, rules_diff

    current = state(name)
    left, _, right = spec.partition("..")
    a = current.rules_revision(parse_rules_revision(left))
    b = current.rules_revision(parse_rules_revision(right)) if right else current.current_rules
    if a is None or b is None:
        raise DomainError(f"Unknown rules revision in {spec!r}: `dokku powersync:history {name} --rules` lists them")
    return rules_diff(a.content, b.content, f"r{a.number}", f"r{b.number}")
