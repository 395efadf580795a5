"""The projector: a pure left fold of an instance's events into its state.

"State at revision N" is the same fold stopped at N; `info`, `history` and `rollback-rules` all
read it from here. The fold runs over a mutable draft and freezes it once at the end, so
projecting a stream is linear in its length (a journal is permanent and only grows).
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Iterable, Optional

from powersync_plugin.core import events as ev
from powersync_plugin.core import service_settings
from powersync_plugin.core.state import BackendLink, InstanceState, Outcome, RulesRevision

_FIELDS = [field.name for field in fields(InstanceState)]
_SEQUENCES = ("rules_history", "intents", "cleanup_keys", "cleanup_mounts", "audience")
_MAPPINGS = ("outcomes", "rotation_undo", "upgrade_undo", "config_extras", "telemetry_undo", "settings_undo")


class Draft:
    """InstanceState's fields, mutable while a fold runs."""

    def __init__(self, state: InstanceState):
        for name in _FIELDS:
            value = getattr(state, name)
            if name in _SEQUENCES:
                value = list(value)
            elif name in _MAPPINGS:
                value = dict(value)
            setattr(self, name, value)
        self.intent_types = dict(self.intents)

    def freeze(self) -> InstanceState:
        values = {}
        for name in _FIELDS:
            value = getattr(self, name)
            values[name] = tuple(value) if name in _SEQUENCES else value
        return InstanceState(**values)


class Fold:
    """Apply events one by one; `state` freezes what has been folded so far."""

    def __init__(self, name: str):
        self.draft = Draft(InstanceState(name=name))

    def add(self, event: ev.StoredEvent) -> None:
        _apply_draft(self.draft, ev.upcast(event))

    @property
    def state(self) -> InstanceState:
        return self.draft.freeze()


def project(name: str, stored: Iterable[ev.StoredEvent], until: Optional[int] = None) -> InstanceState:
    fold = Fold(name)
    for event in stored:
        if until is not None and event.version > until:
            break
        fold.add(event)
    return fold.state


def apply(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    draft = Draft(state)
    _apply_draft(draft, ev.upcast(event))
    return draft.freeze()


def _apply_draft(draft: Draft, event: ev.StoredEvent) -> None:
    _HANDLERS[event.type](draft, event)
    if event.type in ev.INTENT_TYPES:
        draft.intents.append((event.version, event.type))
        draft.intent_types[event.version] = event.type
    draft.version = event.version


def _created(d: Draft, event: ev.StoredEvent) -> None:
    p = event.payload
    d.created, d.destroyed, d.renamed_to = True, False, None
    d.image, d.image_version, d.memory_mb = p["image"], p["image_version"], p["memory_mb"]
    d.storage, d.api_token, d.slot_prefix = p["storage"], p["api_token"], p["slot_prefix"]
    d.image_digest = p.get("digest")


def _adopted(d: Draft, event: ev.StoredEvent) -> None:
    p = event.payload
    _created(d, event)
    revision = RulesRevision(1, event.version, p["rules"], p["rules_digest"], "Adopted rules")
    d.link = BackendLink(
        backend=p["backend"], postgres_service=p.get("postgres_service"), source_fingerprint=p["source_fingerprint"],
        secret_fingerprint=p["secret_fingerprint"], audience=tuple(p["audience"]), kid=p.get("kid"), url=p.get("url"),
        version=event.version, source_sslmode=p["source_sslmode"], storage_sslmode=p["storage_sslmode"],
        source_role=p.get("source_role_name"), source_role_password=p.get("source_role_password", ""),
    )
    d.last_source_role = d.link.source_role
    d.adopted_from = p["adopted_from"]
    d.rules_history = [revision]
    d.current_rules = revision
    d.audience, d.kid = list(d.link.audience), d.link.kid
    d.last_postgres_service = d.link.postgres_service
    d.config_extras = p.get("extras", {})
    d.cleanup_keys, d.cleanup_mounts = list(p.get("cleanup_keys", ())), list(p.get("cleanup_mounts", ()))
    d.managed_config = False


def _published(d: Draft, event: ev.StoredEvent) -> None:
    """Republishing what the journal already describes changes no state."""


def _rules_set(d: Draft, event: ev.StoredEvent) -> None:
    p = event.payload
    revision = RulesRevision(
        number=len(d.rules_history) + 1,
        version=event.version,
        content=p["content"],
        digest=p["digest"],
        description=p.get("description", ""),
        rolled_back_to=p.get("rolled_back_to"),
    )
    d.rules_history.append(revision)
    d.current_rules = revision
    d.rules_failure = ""


def _linked(d: Draft, event: ev.StoredEvent) -> None:
    p = event.payload
    d.link = BackendLink(
        backend=p["backend"],
        postgres_service=p.get("postgres_service"),
        source_fingerprint=p["source_fingerprint"],
        secret_fingerprint=p["secret_fingerprint"],
        audience=tuple(p["audience"]),
        kid=p.get("kid"),
        url=p.get("url"),
        version=event.version,
        source_sslmode=p.get("source_sslmode", "disable"),
        storage_sslmode=p.get("storage_sslmode", "disable"),
        source_role=p.get("source_role_name"),
        source_role_password=p.get("source_role_password", ""),
    )
    d.last_source_role = d.link.source_role
    d.audience, d.kid = list(d.link.audience), d.link.kid
    d.storage_database = p.get("storage_database", d.storage_database)
    d.last_postgres_service = d.link.postgres_service or d.last_postgres_service
    d.slots_kept = False


def _unlinked(d: Draft, event: ev.StoredEvent) -> None:
    d.link = None
    d.slots_kept = bool(event.payload.get("slots_kept"))


def _rotated(d: Draft, event: ev.StoredEvent) -> None:
    p = event.payload
    if d.link is None:
        return
    d.rotation_undo[event.version] = (d.link, d.stale_cause)
    d.link = replace(d.link, secret_fingerprint=p["secret_fingerprint"], source_fingerprint=p["source_fingerprint"])
    d.stale_cause = None


def _backend_changed(d: Draft, event: ev.StoredEvent) -> None:
    d.stale_cause = event.payload["cause"]


def _setting(d: Draft, event: ev.StoredEvent) -> None:
    p = event.payload
    if p["key"] == "auto-rotate":
        d.auto_rotate = p["value"] == "true"
    elif p["key"] == "telemetry":
        d.telemetry_undo[event.version] = d.telemetry
        d.telemetry = p["value"] == "on"
    elif p["key"] in service_settings.FIELDS:
        name = service_settings.FIELDS[p["key"]][0]
        d.settings_undo[event.version] = (name, getattr(d, name))
        setattr(d, name, service_settings.folded(p["key"], p["value"]))


def _upgraded(d: Draft, event: ev.StoredEvent) -> None:
    p = event.payload
    d.upgrade_undo[event.version] = (d.image, d.image_version, d.image_digest)
    d.image, d.image_version, d.image_digest = p["image"], p["image_version"], p.get("digest")


def _renamed(d: Draft, event: ev.StoredEvent) -> None:
    d.renamed_to = event.payload["to"]


def _renamed_from(d: Draft, event: ev.StoredEvent) -> None:
    """The copied events folded to the old name's state; nothing changes but the name."""


def _imported(d: Draft, event: ev.StoredEvent) -> None:
    """Nothing of the old host comes along: no link (its derived config stayed there), no postgres
    service or leftovers to clean up here, and the API token is the one made at import."""
    d.api_token = event.payload["api_token"]
    d.link, d.stale_cause, d.slots_kept = None, None, False
    d.last_postgres_service, d.last_source_role = None, None
    d.cleanup_keys, d.cleanup_mounts = [], []


def _backend_renamed(d: Draft, event: ev.StoredEvent) -> None:
    p = event.payload
    if d.link is not None and d.link.backend == p["from"]:
        d.link = replace(d.link, backend=p["to"])


def _url_changed(d: Draft, event: ev.StoredEvent) -> None:
    if d.link is not None:
        d.link = replace(d.link, url=event.payload["url"])


def _rules_activated(d: Draft, event: ev.StoredEvent) -> None:
    d.rules_active = event.payload["revision"]
    if d.current_rules is not None and d.current_rules.number == d.rules_active:
        d.rules_failure = ""


def _rules_activation_failed(d: Draft, event: ev.StoredEvent) -> None:
    if d.current_rules is not None and d.current_rules.number == event.payload["revision"]:
        d.rules_failure = event.payload.get("reason", "") or "failed"


def _destroyed(d: Draft, event: ev.StoredEvent) -> None:
    d.destroyed = True
    d.link = None


def _outcome(d: Draft, event: ev.StoredEvent) -> None:
    p = event.payload
    cause = p["cause"]
    status = "applied" if event.type == ev.DEPLOY_SUCCEEDED else "failed"
    d.outcomes[cause] = Outcome(status=status, reason=p.get("reason", ""), restored=bool(p.get("restored")))
    adopted_version = d.intents[0][0] if d.adopted_from and d.intents else None
    if status == "applied" and cause != adopted_version and not d.managed_config:
        # The first managed publish rendered the plugin's config and removed the leftovers.
        d.cleanup_keys, d.cleanup_mounts, d.managed_config = [], [], True
    if status == "failed":
        _undo_failed_intent(d, cause)


def _undo_failed_intent(d: Draft, cause: int) -> None:
    """A failed change was compensated: the state goes back to what was in effect before it."""
    intent = d.intent_types.get(cause)
    if intent == ev.INSTANCE_CREATED:
        d.created = False
    elif intent == ev.INSTANCE_DESTROYED:
        d.destroyed = False
    elif cause in d.rotation_undo:
        d.link, stale_cause = d.rotation_undo[cause]
        d.stale_cause = stale_cause or "rotation failed"
    elif cause in d.upgrade_undo:
        d.image, d.image_version, d.image_digest = d.upgrade_undo[cause]
    elif cause in d.telemetry_undo:
        d.telemetry = d.telemetry_undo[cause]
    elif cause in d.settings_undo:
        name, before = d.settings_undo[cause]
        setattr(d, name, before)
    elif d.link is not None and d.link.version == cause:
        d.link = None
    elif d.current_rules is not None and d.current_rules.version == cause:
        effective = [r for r in d.rules_history if d.outcomes.get(r.version, Outcome("applied")).status != "failed"]
        d.current_rules = effective[-1] if effective else None


_HANDLERS = {
    ev.INSTANCE_CREATED: _created,
    ev.RULES_SET: _rules_set,
    ev.BACKEND_LINKED: _linked,
    ev.BACKEND_UNLINKED: _unlinked,
    ev.INSTANCE_DESTROYED: _destroyed,
    ev.BACKEND_ROTATED: _rotated,
    ev.SETTING_CHANGED: _setting,
    ev.IMAGE_UPGRADED: _upgraded,
    ev.BACKEND_CHANGED: _backend_changed,
    ev.INSTANCE_RENAMED: _renamed,
    ev.INSTANCE_RENAMED_FROM: _renamed_from,
    ev.BACKEND_RENAMED: _backend_renamed,
    ev.URL_CHANGED: _url_changed,
    ev.RULES_ACTIVATED: _rules_activated,
    ev.RULES_ACTIVATION_FAILED: _rules_activation_failed,
    ev.INSTANCE_IMPORTED: _imported,
    ev.INSTANCE_ADOPTED: _adopted,
    ev.CONFIG_PUBLISHED: _published,
    ev.DEPLOY_SUCCEEDED: _outcome,
    ev.DEPLOY_FAILED: _outcome,
}
