"""The journal's vocabulary: immutable, dated facts with stable type names.

Type names are strings that never change (renaming a module must not break replay). Every payload
carries a schema number; an older shape is upgraded on read by an ``upcast`` step, because the
journal is permanent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

INSTANCE_CREATED = "instance.created"
RULES_SET = "rules.set"
BACKEND_LINKED = "backend.linked"
BACKEND_UNLINKED = "backend.unlinked"
DEPLOY_SUCCEEDED = "deploy.succeeded"
DEPLOY_FAILED = "deploy.failed"
INSTANCE_DESTROYED = "instance.destroyed"
BACKEND_ROTATED = "backend.rotated"
INSTANCE_ADOPTED = "instance.adopted"
CONFIG_PUBLISHED = "config.published"
SETTING_CHANGED = "setting.changed"
IMAGE_UPGRADED = "image.upgraded"
# An observation, neither intent nor outcome: a linked backend's secret or source changed while
# automatic rotation was off (or could not run), so the instance is stale until rotated.
BACKEND_CHANGED = "backend.changed"
# Observations of `apps:rename` (recorded by its post-app-rename-setup trigger): Dokku moves the
# app; the journal notes that the instance's stream continues under the new name (the old stream
# ends with instance.renamed, the new one holds a copy of its events then instance.renamed_from),
# or that a linked backend now has another name.
INSTANCE_RENAMED = "instance.renamed"
INSTANCE_RENAMED_FROM = "instance.renamed_from"
BACKEND_RENAMED = "backend.renamed"
# The instance's URL changed under it (its domain followed an apps:rename) and the backend's
# POWERSYNC_URL was set to the new one.
URL_CHANGED = "instance.url_changed"
# Rules reach the service through its deploy API: the deploy is the outcome of rules.set; the
# service activates them later, once replicated (or reports why it cannot). Observations.
RULES_ACTIVATED = "rules.activated"
RULES_ACTIVATION_FAILED = "rules.activation_failed"
# `powersync:import` recreated the instance on this host from an export: the events before it are
# the export's (same versions, times and actors); on this host the instance starts unlinked, with
# a new API token (the export carries none).
INSTANCE_IMPORTED = "instance.imported"

# Intents start a change; outcomes close one, naming the intent's stream version as `cause`.
INTENT_TYPES = frozenset(
    {
        INSTANCE_CREATED, RULES_SET, BACKEND_LINKED, BACKEND_UNLINKED, INSTANCE_DESTROYED, BACKEND_ROTATED,
        SETTING_CHANGED, IMAGE_UPGRADED, INSTANCE_ADOPTED, CONFIG_PUBLISHED,
    }
)
OUTCOME_TYPES = frozenset({DEPLOY_SUCCEEDED, DEPLOY_FAILED})
OBSERVATION_TYPES = frozenset(
    {BACKEND_CHANGED, INSTANCE_RENAMED, INSTANCE_RENAMED_FROM, BACKEND_RENAMED, URL_CHANGED, RULES_ACTIVATED,
     RULES_ACTIVATION_FAILED, INSTANCE_IMPORTED}
)
KNOWN_TYPES = INTENT_TYPES | OUTCOME_TYPES | OBSERVATION_TYPES

CURRENT_SCHEMA = {name: 1 for name in KNOWN_TYPES}


@dataclass(frozen=True)
class NewEvent:
    """An event decided but not yet stored."""

    type: str
    payload: Mapping[str, Any]
    schema: int = 0

    def __post_init__(self) -> None:
        if self.type not in KNOWN_TYPES:
            raise ValueError(f"unknown event type {self.type!r}")
        if not self.schema:
            object.__setattr__(self, "schema", CURRENT_SCHEMA[self.type])


@dataclass(frozen=True)
class StoredEvent:
    """An event as the journal returns it."""

    sequence: int
    stream: str
    version: int
    type: str
    schema: int
    payload: Mapping[str, Any]
    recorded_at: str
    actor: str
    command: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def upcast(event: StoredEvent) -> StoredEvent:
    """Bring an event stored under an older schema to the current payload shape.

    Every type is still at schema 1, so there is nothing to upgrade yet; an event written by a
    newer plugin (a schema this code does not know) is refused rather than misread.
    """
    current = CURRENT_SCHEMA.get(event.type)
    if current is None or event.schema > current:
        raise ValueError(
            f"event {event.stream}@{event.version} has type {event.type!r} schema {event.schema}, "
            "written by a newer dokku-powersync: upgrade the plugin"
        )
    return event
