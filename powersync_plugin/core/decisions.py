"""Decisions: (state, command) -> new events, or a DomainError. Pure.

Nothing here touches Docker, Dokku or a clock; every fact from the world arrives as an argument.
"""
from __future__ import annotations

import re
from typing import Optional

from powersync_plugin.core import config_render
from powersync_plugin.core import events as ev
from powersync_plugin.core import service_settings
from powersync_plugin.core.service_settings import memory_megabytes, node_heap_megabytes  # noqa: F401 (callers use them here)
from powersync_plugin.core.derive import rules_digest
from powersync_plugin.core.errors import DomainError, UsageProblem
from powersync_plugin.core.names import check_app_name, check_existing_app_name, slot_prefix
from powersync_plugin.core.state import InstanceState, RulesRevision

STORAGE_MODES = ("separate-database", "same-database")
_VERSION = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


def is_exact_version(version: str) -> bool:
    return bool(_VERSION.match(version))


def storage_mode(storage: str) -> str:
    if storage in STORAGE_MODES:
        return storage
    if storage.startswith(("postgres://", "postgresql://")):
        return "uri"
    raise UsageProblem(
        f"Invalid --storage {storage.split('@')[-1]!r}: use separate-database, same-database or a postgresql:// URI"
    )


def decide_create(
    state: InstanceState,
    name: str,
    image: str,
    image_version: str,
    memory: str,
    storage: str,
    api_token: str,
    storage_fingerprint: Optional[str],
) -> list[ev.NewEvent]:
    check_app_name(name)
    if state.live:
        raise DomainError(f"Instance {name} already exists: see `dokku powersync:info {name}`")
    if not _VERSION.match(image_version):
        raise UsageProblem(f"Invalid --image-version {image_version!r}: use an exact X.Y.Z release (pin versions)")
    if not image or any(char in image for char in " @:"):
        raise UsageProblem(f"Invalid --image {image!r}: give a repository without tag, e.g. journeyapps/powersync-service")
    memory_mb = memory_megabytes(memory)
    mode = storage_mode(storage)
    payload = {
        "image": image,
        "image_version": image_version,
        "memory_mb": memory_mb,
        "storage": mode,
        "api_token": api_token,
        "slot_prefix": slot_prefix(name),
    }
    if storage_fingerprint:
        payload["storage_fingerprint"] = storage_fingerprint
    return [ev.NewEvent(ev.INSTANCE_CREATED, payload)]


def require_live(state: InstanceState) -> None:
    if not state.live:
        if state.renamed_to is not None and not state.destroyed:
            raise DomainError(
                f"Instance {state.name} was renamed to {state.renamed_to} (apps:rename): use that name"
            )
        if state.destroyed:
            raise DomainError(f"Instance {state.name} was destroyed: `dokku powersync:history {state.name}` shows its past")
        raise DomainError(f"Instance {state.name} does not exist: create it with `dokku powersync:create {state.name}`")


def decide_set_rules(state: InstanceState, content: str, rolled_back_to: Optional[int] = None) -> list[ev.NewEvent]:
    """New rules revision, or [] when the bytes equal the rules in effect."""
    require_live(state)
    if state.current_rules is not None and state.current_rules.content == content:
        return []
    payload = {
        "content": content,
        "digest": rules_digest(content),
        "description": describe_rules_change(state.current_rules.content if state.current_rules else None, content),
    }
    if rolled_back_to is not None:
        payload["rolled_back_to"] = rolled_back_to
        payload["description"] = f"Rolled back to r{rolled_back_to}"
    return [ev.NewEvent(ev.RULES_SET, payload)]


def rollback_target(state: InstanceState, number: Optional[int]) -> RulesRevision:
    """The revision to roll back to: `number`, or the last good revision before the current one."""
    if not state.rules_history:
        raise DomainError(f"{state.name} has no rules revisions yet: set some with `dokku powersync:set-rules`")
    if number is not None:
        target = state.rules_revision(number)
        if target is None:
            raise DomainError(
                f"{state.name} has no rules revision r{number} (it has r1..r{len(state.rules_history)}): "
                f"`dokku powersync:history {state.name} --rules` lists them"
            )
        return target
    current = state.current_rules
    earlier = [revision for revision in state.rules_history if current is None or revision.number < current.number]
    candidates = [revision for revision in earlier if not _failed(state, revision.version)]
    if not candidates:
        raise DomainError(f"{state.name} has no earlier good rules revision to roll back to")
    return candidates[-1]


def _failed(state: InstanceState, version: int) -> bool:
    outcome_of = state.outcomes.get(version)
    return outcome_of is not None and outcome_of.status == "failed"


def describe_rules_change(before: Optional[str], after: str) -> str:
    new = _definition_names(after)
    if before is None:
        return f"Set rules ({len(new)} definitions)"
    old = _definition_names(before)
    added, removed = len(new - old), len(old - new)
    if not added and not removed:
        return "Set rules (same definitions, text changed)"
    return f"Set rules (+{added}, -{removed})"


def _definition_names(text: str) -> set[str]:
    import yaml

    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return set()
    names: set[str] = set()
    for section in ("bucket_definitions", "streams"):
        value = document.get(section) if isinstance(document, dict) else None
        if isinstance(value, dict):
            names.update(f"{section}.{key}" for key in value)
    return names


def decide_link(
    state: InstanceState,
    backend: str,
    postgres_service: Optional[str],
    source_fingerprint: str,
    secret_fingerprint: str,
    audience: tuple[str, ...],
    kid: Optional[str],
    url: Optional[str],
    storage_database: Optional[str],
    source_sslmode: str,
    storage_sslmode: str,
) -> list[ev.NewEvent]:
    require_linkable(state, backend)
    if not audience or not all(audience):
        raise UsageProblem("The audience must not be empty: PowerSync rejects every token when it is")
    payload = {
        "backend": backend,
        "postgres_service": postgres_service,
        "source_fingerprint": source_fingerprint,
        "secret_fingerprint": secret_fingerprint,
        "audience": list(audience),
        "kid": kid,
        "url": url,
        "storage_database": storage_database,
        "source_sslmode": source_sslmode,
        "storage_sslmode": storage_sslmode,
    }
    return [ev.NewEvent(ev.BACKEND_LINKED, payload)]


def require_linkable(state: InstanceState, backend: str) -> None:
    require_live(state)
    check_existing_app_name(backend)
    if backend == state.name:
        raise UsageProblem("An instance cannot be linked to itself: name the backend app that holds SECRET_KEY")
    if state.link is not None:
        if state.link.backend == backend:
            raise DomainError(f"{state.name} is already linked to {backend}")
        raise DomainError(
            f"{state.name} is already linked to {state.link.backend}: one backend per instance "
            f"(`dokku powersync:unlink {state.name} {state.link.backend}` first)"
        )


def decide_unlink(state: InstanceState, backend: str, keep_slots: bool) -> list[ev.NewEvent]:
    require_live(state)
    if state.link is None:
        raise DomainError(f"{state.name} is not linked to any backend")
    if state.link.backend != backend:
        raise DomainError(f"{state.name} is linked to {state.link.backend}, not {backend}")
    return [ev.NewEvent(ev.BACKEND_UNLINKED, {"backend": backend, "slots_kept": keep_slots})]


def decide_destroy(state: InstanceState) -> list[ev.NewEvent]:
    require_live(state)
    if state.link is not None:
        raise DomainError(
            f"{state.name} is linked to {state.link.backend}: "
            f"`dokku powersync:unlink {state.name} {state.link.backend}` first"
        )
    return [ev.NewEvent(ev.INSTANCE_DESTROYED, {})]


SETTINGS = {"auto-rotate": ("true", "false"), "telemetry": ("on", "off")}


def decide_setting(state: InstanceState, key: str, value: str) -> list[ev.NewEvent]:
    require_live(state)
    if key in service_settings.FIELDS:
        value = service_settings.normalise(key, value)
        if value == service_settings.current(state, key):
            return []
        return [ev.NewEvent(ev.SETTING_CHANGED, {"key": key, "value": value})]
    if key not in SETTINGS:
        known = sorted((*SETTINGS, *service_settings.FIELDS))
        raise UsageProblem(f"Unknown setting {key!r}: known settings are {', '.join(known)}")
    if value not in SETTINGS[key]:
        raise UsageProblem(f"Invalid value {value!r} for {key}: use {' or '.join(SETTINGS[key])}")
    if key == "telemetry":
        current = "on" if config_render.telemetry_sharing(state) else "off"
    else:
        current = "true" if state.auto_rotate else "false"
    if value == current:
        return []
    return [ev.NewEvent(ev.SETTING_CHANGED, {"key": key, "value": value})]


def decide_rotation(state: InstanceState, secret_fingerprint: str, source_fingerprint: str, cause: str) -> list[ev.NewEvent]:
    require_live(state)
    if state.link is None:
        raise DomainError(f"{state.name} is not linked: nothing to rotate")
    link = state.link
    if link.secret_fingerprint == secret_fingerprint and link.source_fingerprint == source_fingerprint and not state.stale_cause:
        return []
    return [ev.NewEvent(ev.BACKEND_ROTATED, {
        "backend": link.backend, "cause": cause,
        "secret_fingerprint": secret_fingerprint, "source_fingerprint": source_fingerprint,
    })]


def decide_upgrade(
    state: InstanceState, image: str, image_version: str, digest: str, force: bool, image_given: bool
) -> list[ev.NewEvent]:
    require_live(state)
    if not _VERSION.match(image_version):
        raise UsageProblem(f"Invalid --image-version {image_version!r}: use an exact X.Y.Z release")
    if image != state.image and not image_given:
        image = state.image  # never switch a custom image back to the default silently
    if image == state.image and image_version == state.image_version and (digest == state.image_digest or not state.image_digest):
        return []
    if image == state.image and _version_key(image_version) < _version_key(state.image_version) and not force:
        raise DomainError(
            f"{image_version} is older than {state.image_version}: PowerSync's storage migrations are not "
            "reversible, so a downgrade can fail with 'storage version not supported'. Use --force if you are sure"
        )
    return [ev.NewEvent(ev.IMAGE_UPGRADED, {
        "image": image, "image_version": image_version, "digest": digest,
        "from": f"{state.image}:{state.image_version}",
    })]


def _version_key(version: str) -> tuple:
    core = version.split("-", 1)[0]
    return tuple(int(part) for part in core.split("."))


def outcome(cause: int, ok: bool, reason: str = "", restored: bool = False, **extra) -> ev.NewEvent:
    payload = {"cause": cause, **extra}
    if not ok:
        payload.update(reason=reason, restored=restored)
    return ev.NewEvent(ev.DEPLOY_SUCCEEDED if ok else ev.DEPLOY_FAILED, payload)
