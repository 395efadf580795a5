"""The projector: a pure left fold of an instance's events into its state.

"State at revision N" is the same fold stopped at N; `info`, `history` and `rollback-rules` all
read it from here.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Optional

from powersync_plugin.core import events as ev
from powersync_plugin.core.state import BackendLink, InstanceState, Outcome, RulesRevision


def project(name: str, stored: Iterable[ev.StoredEvent], until: Optional[int] = None) -> InstanceState:
    state = InstanceState(name=name)
    for event in stored:
        if until is not None and event.version > until:
            break
        state = apply(state, ev.upcast(event))
    return state


def apply(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    handler = _HANDLERS[event.type]
    state = handler(state, event)
    intents = state.intents + ((event.version, event.type),) if event.type in ev.INTENT_TYPES else state.intents
    return replace(state, version=event.version, intents=intents)


def _created(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    p = event.payload
    return replace(
        state,
        created=True,
        destroyed=False,
        image=p["image"],
        image_version=p["image_version"],
        memory_mb=p["memory_mb"],
        storage=p["storage"],
        api_token=p["api_token"],
        slot_prefix=p["slot_prefix"],
        image_digest=p.get("digest"),
    )


def _adopted(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    p = event.payload
    state = _created(state, event)
    revision = RulesRevision(1, event.version, p["rules"], p["rules_digest"], "Adopted rules")
    link = BackendLink(
        backend=p["backend"], postgres_service=p.get("postgres_service"), source_fingerprint=p["source_fingerprint"],
        secret_fingerprint=p["secret_fingerprint"], audience=tuple(p["audience"]), kid=p.get("kid"), url=p.get("url"),
        version=event.version, source_sslmode=p["source_sslmode"], storage_sslmode=p["storage_sslmode"],
    )
    return replace(
        state, adopted_from=p["adopted_from"], image_digest=p.get("digest"), rules_history=(revision,),
        current_rules=revision, link=link, audience=link.audience, kid=link.kid,
        last_postgres_service=link.postgres_service, config_extras=p.get("extras", {}),
        cleanup_keys=tuple(p.get("cleanup_keys", ())), cleanup_mounts=tuple(p.get("cleanup_mounts", ())),
        managed_config=False,
    )


def _published(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    return state


def _rules_set(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    p = event.payload
    revision = RulesRevision(
        number=len(state.rules_history) + 1,
        version=event.version,
        content=p["content"],
        digest=p["digest"],
        description=p.get("description", ""),
        rolled_back_to=p.get("rolled_back_to"),
    )
    return replace(state, rules_history=state.rules_history + (revision,), current_rules=revision)


def _linked(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    p = event.payload
    link = BackendLink(
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
    )
    return replace(
        state,
        link=link,
        audience=link.audience,
        kid=link.kid,
        storage_database=p.get("storage_database", state.storage_database),
        last_postgres_service=link.postgres_service or state.last_postgres_service,
        slots_kept=False,
    )


def _unlinked(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    return replace(state, link=None, slots_kept=bool(event.payload.get("slots_kept")))


def _rotated(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    p = event.payload
    if state.link is None:
        return state
    link = replace(state.link, secret_fingerprint=p["secret_fingerprint"], source_fingerprint=p["source_fingerprint"])
    return replace(
        state, link=link, stale_cause=None, rotation_undo={**state.rotation_undo, event.version: (state.link, state.stale_cause)}
    )


def _backend_changed(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    return replace(state, stale_cause=event.payload["cause"])


def _setting(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    p = event.payload
    if p["key"] == "auto-rotate":
        return replace(state, auto_rotate=p["value"] == "true")
    return state


def _upgraded(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    p = event.payload
    return replace(
        state, image=p["image"], image_version=p["image_version"], image_digest=p.get("digest"),
        upgrade_undo={**state.upgrade_undo, event.version: (state.image, state.image_version, state.image_digest)},
    )


def _destroyed(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    return replace(state, destroyed=True, link=None)


def _outcome(state: InstanceState, event: ev.StoredEvent) -> InstanceState:
    p = event.payload
    cause = p["cause"]
    status = "applied" if event.type == ev.DEPLOY_SUCCEEDED else "failed"
    outcomes = dict(state.outcomes)
    outcomes[cause] = Outcome(status=status, reason=p.get("reason", ""), restored=bool(p.get("restored")))
    state = replace(state, outcomes=outcomes)
    adopted_version = state.intents[0][0] if state.adopted_from and state.intents else None
    if status == "applied" and cause != adopted_version and not state.managed_config:
        # The first managed publish rendered the plugin's config and removed the leftovers.
        state = replace(state, cleanup_keys=(), cleanup_mounts=(), managed_config=True)
    if status == "failed":
        state = _undo_failed_intent(state, cause)
    return state


def _undo_failed_intent(state: InstanceState, cause: int) -> InstanceState:
    """A failed change was compensated: the state goes back to what was in effect before it."""
    if (cause, ev.INSTANCE_CREATED) in state.intents:
        return replace(state, created=False)
    if (cause, ev.INSTANCE_DESTROYED) in state.intents:
        return replace(state, destroyed=False)
    if cause in state.rotation_undo:
        link, stale_cause = state.rotation_undo[cause]
        return replace(state, link=link, stale_cause=stale_cause or "rotation failed")
    if cause in state.upgrade_undo:
        image, version, digest = state.upgrade_undo[cause]
        return replace(state, image=image, image_version=version, image_digest=digest)
    if state.link is not None and state.link.version == cause:
        return replace(state, link=None)
    if state.current_rules is not None and state.current_rules.version == cause:
        effective = [
            revision
            for revision in state.rules_history
            if state.outcomes.get(revision.version, Outcome("applied")).status != "failed"
        ]
        return replace(state, current_rules=effective[-1] if effective else None)
    return state


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
    ev.INSTANCE_ADOPTED: _adopted,
    ev.CONFIG_PUBLISHED: _published,
    ev.DEPLOY_SUCCEEDED: _outcome,
    ev.DEPLOY_FAILED: _outcome,
}
