"""The export file of `powersync:export` / `powersync:import`: one versioned JSON document. Pure.

Format 1 (the README's "Moving an instance to another host" documents every key):

    {"format": "dokku-powersync-export", "format_version": 1,
     "instance": NAME, "exported_at": UTC time, "exported_from": host name,
     "journal_schema": the exporting journal's schema revision,
     "settings": what the events fold to, for a person reading the file and for the import,
     "domains": the instance app's domains, "withheld": every value left out and where,
     "env_required": PS_* config vars the instance's config reads that the file does not carry,
     "events": [{"version", "type", "schema", "payload", "recorded_at", "actor", "command"}, ...],
     "digest": sha256 of the canonical JSON of everything above}

Events are the journal's rows as stored (each keeps its own schema number: the projector upcasts
them on read, on the importing host as on the exporting one). A file of an older format is
brought to the current one by `_UPCASTERS` (format N -> N+1), as events are by their schema; a
newer format, a file that is not complete JSON or whose digest does not match is refused.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable

from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.projector import project
from powersync_plugin.core.state import InstanceState

FORMAT = "dokku-powersync-export"
FORMAT_VERSION = 1
# Placeholder of a value the export leaves out (see transfer.py for which and why).
WITHHELD = "<withheld by export>"
_EVENT_KEYS = ("version", "type", "schema", "payload", "recorded_at", "actor", "command")
_REQUIRED = ("instance", "exported_at", "exported_from", "settings", "domains", "withheld", "env_required", "events")
# format N -> N+1, each a small function of the whole document (none yet: 1 is the first format)
_UPCASTERS: dict[int, Callable[[dict], dict]] = {}


class ExportFileError(DomainError):
    """The file cannot be imported; the message says why, and that nothing changed."""


@dataclass(frozen=True)
class ExportFile:
    name: str
    format_version: int  # as written (the document was upcast to FORMAT_VERSION)
    exported_at: str
    exported_from: str
    settings: dict
    domains: tuple[str, ...]
    withheld: tuple[str, ...]
    env_required: tuple[str, ...]
    events: tuple[ev.StoredEvent, ...]
    state: InstanceState  # the events folded


def settings_of(state: InstanceState) -> dict:
    rules = state.current_rules
    return {
        "image": state.image,
        "image_version": state.image_version,
        "memory_mb": state.memory_mb,
        "storage": state.storage,
        "slot_prefix": state.slot_prefix,
        "audience": list(state.audience),
        "kid": state.kid,
        "auto_rotate": state.auto_rotate,
        "telemetry": state.telemetry,
        "log_level": state.log_level,
        "metrics_port": state.metrics_port,
        "compact_schedule": state.compact_schedule,
        "rules_revision": f"r{rules.number}" if rules else None,
        "rules_digest": rules.digest if rules else None,
        "linked_backend": state.link.backend if state.link else None,
        "url": state.link.url if state.link else None,
        "journal_revision": state.version,
    }


def event_row(event: ev.StoredEvent) -> dict:
    return {
        "version": event.version, "type": event.type, "schema": event.schema, "payload": dict(event.payload),
        "recorded_at": event.recorded_at, "actor": event.actor, "command": event.command,
    }


def build(
    name: str, rows: list[dict], state: InstanceState, *, exported_at: str, exported_from: str, journal_schema: str,
    domains: list[str], withheld: list[str], env_required: list[str],
) -> dict:
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "instance": name,
        "exported_at": exported_at,
        "exported_from": exported_from,
        "journal_schema": journal_schema,
        "settings": settings_of(state),
        "domains": list(domains),
        "withheld": list(withheld),
        "env_required": sorted(env_required),
        "events": rows,
    }
    document["digest"] = digest(document)
    return document


def digest(document: dict) -> str:
    body = {key: value for key, value in document.items() if key != "digest"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def serialize(document: dict) -> str:
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def parse(text: str) -> ExportFile:
    """The checked content of an export file, or ExportFileError (nothing is changed by a refusal)."""
    if not text.strip():
        raise ExportFileError("No export on stdin: `dokku powersync:import < NAME.json`. Nothing changed")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportFileError(
            f"The file is not a complete export (corrupt or truncated: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}). Nothing changed"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ExportFileError(f"The file is not a dokku-powersync export (no \"format\": \"{FORMAT}\"). Nothing changed")
    written = document.get("format_version")
    if not isinstance(written, int) or isinstance(written, bool) or written < 1:
        raise ExportFileError(f"The file has no valid format_version ({written!r}): it is corrupt. Nothing changed")
    if written > FORMAT_VERSION:
        raise ExportFileError(
            f"The file is export format {written}, written by a newer dokku-powersync; this plugin reads formats "
            f"up to {FORMAT_VERSION}: upgrade it (`dokku plugin:update powersync`). Nothing changed"
        )
    if document.get("digest") != digest(document):
        raise ExportFileError("The file's digest does not match its content: it is corrupt or was edited. Nothing changed")
    for version in range(written, FORMAT_VERSION):
        document = _UPCASTERS[version](document)
    return _checked(document, written)


def _checked(document: dict, written: int) -> ExportFile:
    missing = [key for key in _REQUIRED if key not in document]
    if missing:
        raise ExportFileError(f"The file lacks {', '.join(missing)}: it is corrupt. Nothing changed")
    name, rows = document["instance"], document["events"]
    if not isinstance(name, str) or not isinstance(rows, list) or not rows:
        raise ExportFileError("The file names no instance or holds no events: it is corrupt. Nothing changed")
    stored = []
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or any(key not in row for key in _EVENT_KEYS) or row["version"] != index:
            raise ExportFileError(f"Event {index} of the file is malformed or out of order: it is corrupt. Nothing changed")
        texts = (row["type"], row["recorded_at"], row["actor"], row["command"])
        if not isinstance(row["payload"], dict) or not all(isinstance(text, str) for text in texts):
            raise ExportFileError(f"Event {index} of the file has fields of the wrong type: it is corrupt. Nothing changed")
        stored.append(ev.StoredEvent(
            0, name, row["version"], row["type"], row["schema"], row["payload"], row["recorded_at"], row["actor"], row["command"],
        ))
    state = _fold(name, stored)
    if not state.live:
        raise ExportFileError(f"The file's instance {name} is not live at its last event (destroyed or renamed). Nothing changed")
    return ExportFile(
        name=name, format_version=written, exported_at=str(document["exported_at"]),
        exported_from=str(document["exported_from"]), settings=dict(document["settings"]),
        domains=tuple(document["domains"]), withheld=tuple(document["withheld"]),
        env_required=tuple(document["env_required"]), events=tuple(stored), state=state,
    )


def _fold(name: str, stored: list[ev.StoredEvent]) -> InstanceState:
    """The events through the same fold (and upcasters) as the journal's: an event of a newer
    schema or an unknown type is refused here, before anything is written."""
    try:
        return project(name, stored)
    except ValueError as exc:
        raise ExportFileError(f"{exc}. Nothing changed") from None
    except (KeyError, TypeError) as exc:
        raise ExportFileError(f"An event of the file lacks a field ({exc}): it is corrupt. Nothing changed") from None

