"""The read model: the summary row every append keeps current, history rows, and the presenters
of `info` and `history` (secrets masked), all folded from the journal."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from powersync_plugin.core import events as ev
from powersync_plugin.redact import MASK, mask_config_secrets

if TYPE_CHECKING:  # `history` folds no state: it reads events only, and starts without these
    from powersync_plugin.core.state import InstanceState


def info_fields(state: InstanceState, status: str) -> dict[str, str]:
    """`info` keys, in Dokku's order of importance; secrets masked."""
    from powersync_plugin.core import config_render, service_settings

    link = state.link
    rules = state.current_rules
    return {
        "name": state.name,
        "status": status,
        "image": f"{state.image}:{state.image_version}",
        "image-version": state.image_version,
        "memory": f"{state.memory_mb}m",
        "storage": state.storage,
        "storage-database": state.storage_database or "-",
        "linked-backend": link.backend if link else "-",
        "postgres-service": (link.postgres_service if link else None) or "-",
        "url": (link.url if link else None) or "-",
        "audience": ",".join(state.audience) or "-",
        "kid": state.kid or "-",
        "rules-revision": f"r{rules.number}" if rules else "-",
        "rules-digest": rules.digest[:12] if rules else "-",
        "rules-state": rules_state_text(state),
        "slot-prefix": state.slot_prefix,
        "api-token": MASK,
        "journal-revision": str(state.version),
        "pending-change": str(state.pending_intent) if state.pending_intent else "-",
        "auto-rotate": "true" if state.auto_rotate else "false",
        "telemetry": "on" if config_render.telemetry_sharing(state) else "off",
        "log-level": service_settings.current(state, "log-level"),
        "metrics": service_settings.current(state, "metrics"),
        "compact-schedule": service_settings.current(state, "compact-schedule"),
        "stale": state.stale_cause or "-",
        "source-role": source_role_text(state),
    }


def rules_state_text(state: InstanceState) -> str:
    """The current revision as the journal last saw it on the service."""
    activation = state.rules_activation
    if activation == "failed":
        return f"failed: {state.rules_failure}"
    if activation == "deploying" and state.rules_active:
        return f"deploying (r{state.rules_active} serving)"
    return activation or "-"


def source_role_text(state: InstanceState) -> str:
    """How the instance connects to its source: as the backend's DSN user, or its own role."""
    if state.link is None:
        return "-"
    return f"dedicated ({state.link.source_role})" if state.link.source_role else "superuser"


def summary_json(state: InstanceState) -> str:
    """The read model row of an instance: what info, list and exists show, without folding."""
    import json

    return json.dumps({
        "live": state.live,
        "destroyed": state.destroyed,
        "renamed_to": state.renamed_to,
        "linked": state.link is not None,
        "fields": info_fields(state, ""),
    }, sort_keys=True)


@dataclass(frozen=True)
class HistoryRow:
    revision: int
    recorded_at: str
    actor: str
    event: str
    status: str
    reason: str
    rules_revision: Optional[str]
    rules_digest: Optional[str]
    description: str

    def as_json(self) -> dict:
        return {
            "revision": self.revision,
            "recorded_at": self.recorded_at,
            "actor": self.actor,
            "event": self.event,
            "status": self.status,
            "reason": self.reason,
            "rules_revision": self.rules_revision,
            "rules_digest": self.rules_digest,
            "description": self.description,
        }


LINK_OPENING = (ev.BACKEND_LINKED, ev.INSTANCE_ADOPTED)
LINK_CLOSING = (ev.BACKEND_UNLINKED, ev.INSTANCE_DESTROYED, ev.INSTANCE_IMPORTED)
RULES_CARRIERS = (ev.RULES_SET, ev.INSTANCE_ADOPTED)


def history_rows(
    name: str, stored: list[ev.StoredEvent], rules_only: bool = False, rules_before: int = 0,
    link_at_start: Optional[int] = None,
) -> list[HistoryRow]:
    """Rows for `stored`, a tail of the stream: `rules_before` rules revisions and the link made at
    version `link_at_start` (None: not linked) come from the events before it, so a window of the
    last rows costs the same however long the stream is."""
    outcomes: dict[int, ev.StoredEvent] = {
        event.payload["cause"]: event for event in stored if event.type in ev.OUTCOME_TYPES
    }
    last_intent_of_type = {event.type: event.version for event in stored if event.type in ev.INTENT_TYPES}
    link, rules_number, rows = link_at_start, rules_before, []
    for event in ev_upcast_all(stored):
        if event.type in ev.OUTCOME_TYPES:
            if event.type == ev.DEPLOY_FAILED and event.payload["cause"] == link:
                link = None  # a failed link was compensated
            continue  # shown as the status of the change it closes
        linked_before = link is not None
        if event.type in LINK_OPENING:
            link = event.version
        elif event.type in LINK_CLOSING:
            link = None
        carries_rules = event.type in RULES_CARRIERS
        if carries_rules:
            rules_number += 1
        if rules_only and not carries_rules:
            continue
        status, reason = _status(event, linked_before, outcomes, last_intent_of_type)
        digest = event.payload.get("digest") if event.type == ev.RULES_SET else event.payload.get("rules_digest")
        rows.append(
            HistoryRow(
                revision=event.version,
                recorded_at=event.recorded_at,
                actor=event.actor,
                event=event.type,
                status=status,
                reason=reason,
                rules_revision=f"r{rules_number}" if carries_rules else None,
                rules_digest=digest[:12] if carries_rules else None,
                description=_describe(event),
            )
        )
    return rows


def ev_upcast_all(stored):
    return (ev.upcast(event) for event in stored)


def _status(event, linked_before: bool, outcomes, last_intent_of_type) -> tuple[str, str]:
    outcome = outcomes.get(event.version)
    if outcome is not None:
        if outcome.type == ev.DEPLOY_SUCCEEDED:
            return "applied", ""
        restored = " (restored)" if outcome.payload.get("restored") else ""
        return "failed", outcome.payload.get("reason", "") + restored
    if event.type in ev.OBSERVATION_TYPES:
        return "observed", ""
    if event.type == ev.RULES_SET and not linked_before:
        return "stored", "published at link"
    if event.type == ev.SETTING_CHANGED and event.payload.get("deferred"):
        return "stored", "--no-restart: applied by the next publish (powersync:reconcile)"
    if last_intent_of_type[event.type] > event.version:
        return "superseded", ""
    return "pending", "no outcome recorded"


def _describe(event: ev.StoredEvent) -> str:
    p = event.payload
    if event.type == ev.INSTANCE_CREATED:
        cloned = f", cloned from {p['cloned_from']}" if p.get("cloned_from") else ""
        return f"Created ({p['image']}:{p['image_version']}, {p['memory_mb']}m, storage {p['storage']}{cloned})"
    if event.type == ev.RULES_SET:
        return p.get("description") or "Set rules"
    if event.type == ev.BACKEND_LINKED:
        return f"Linked to {p['backend']}"
    if event.type == ev.BACKEND_UNLINKED:
        return f"Unlinked from {p['backend']}" + (" (slots kept)" if p.get("slots_kept") else "")
    if event.type == ev.INSTANCE_DESTROYED:
        left = f"; left: {'; '.join(p['left'])}" if p.get("left") else ""
        return "Destroyed" + (f" ({p['cause']})" if p.get("cause") else "") + left
    if event.type == ev.INSTANCE_ADOPTED:
        return f"Adopted from app {p['adopted_from']} (linked to {p['backend']}, {p['image']}:{p['image_version']})"
    if event.type == ev.BACKEND_ROTATED:
        return f"Rotated: {p['cause']}"
    if event.type == ev.IMAGE_UPGRADED:
        return f"Upgraded {p['from']} -> {p['image']}:{p['image_version']}"
    if event.type == ev.SETTING_CHANGED:
        return f"Set {p['key']}={p['value']}"
    if event.type == ev.CONFIG_PUBLISHED:
        return f"Published config ({p['cause']})"
    if event.type == ev.BACKEND_CHANGED:
        return f"Backend changed: {p['cause']} (stale)"
    if event.type == ev.INSTANCE_RENAMED:
        return f"Renamed to {p['to']} (apps:rename; history continues there)"
    if event.type == ev.INSTANCE_RENAMED_FROM:
        return f"Renamed from {p['from']} (apps:rename; the revisions before are {p['from']}'s)"
    if event.type == ev.URL_CHANGED:
        return f"URL changed to {p['url']} ({p['cause']})"
    if event.type == ev.RULES_ACTIVATED:
        took = f" after {p['seconds']:g}s" if p.get("seconds") else ""
        return f"Rules r{p['revision']} active on the service{took}" + (f" (slot {p['slot']})" if p.get("slot") else "")
    if event.type == ev.RULES_ACTIVATION_FAILED:
        return f"Rules r{p['revision']} did not become active: {p['reason']}"
    if event.type == ev.INSTANCE_IMPORTED:
        return (
            f"Imported from {p['from_host']} (export of {p['exported_at']}, format {p['format_version']}; "
            f"the revisions before are the export's)"
        )
    if event.type == ev.BACKEND_RENAMED:
        return f"Backend {p['from']} renamed to {p['to']} (apps:rename)"
    return event.type


def rules_diff(before: str, after: str, before_label: str, after_label: str) -> list[str]:
    import difflib

    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), before_label, after_label
        )
    ]


def parse_rules_revision(text: str) -> int:
    from powersync_plugin.core.errors import UsageProblem

    digits = text[1:] if text.lower().startswith("r") else text
    if not digits.isdigit() or int(digits) < 1:
        raise UsageProblem(f"Invalid rules revision {text!r}: use r1, r2, ... (`powersync:history NAME --rules`)")
    return int(digits)


def masked_payload(payload: dict) -> dict:
    """An event payload for display: generated secrets masked, rules summarised."""
    shown = {}
    for key, value in payload.items():
        if key in ("api_token", "source_role_password"):
            shown[key] = MASK
        elif key == "content":
            shown[key] = f"<{len(value.encode())} bytes, {value.count(chr(10))} lines>"
        elif key == "extras":  # an adopted config's own keys: may name secrets or read them by !env
            shown[key] = mask_config_secrets(value)
        else:
            shown[key] = value
    return shown
