"""`powersync:set`: an instance's settings, and the plugin-wide default image version."""
from __future__ import annotations

from powersync_plugin import access, settings
from powersync_plugin.core import decisions
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.pipeline import changing, commit
from powersync_plugin.services import Services


def default_image_version(s: Services) -> str:
    found = s.journal.latest_payload(settings.GLOBAL_STREAM, ev.SETTING_CHANGED, "image-version")
    return settings.default_image_version(found["value"] if found else None)


def set_global(s: Services, key: str, value: str) -> None:
    access.require_global(s, "powersync:set", key, value)
    if key != "image-version":
        raise DomainError(f"Unknown global setting {key!r}: the only one is image-version")
    if not decisions.is_exact_version(value):
        raise DomainError(f"Invalid image-version {value!r}: use an exact X.Y.Z release")
    with s.lock(settings.GLOBAL_STREAM):
        # the plugin-wide stream is no instance: no state to fold, nothing to apply
        head = s.journal.head(settings.GLOBAL_STREAM)
        s.journal.append(
            settings.GLOBAL_STREAM, head, [ev.NewEvent(ev.SETTING_CHANGED, {"key": key, "value": value})],
            s.actor, s.command,
        )
    s.out.step(f"New instances now default to image version {value} (existing ones: `powersync:upgrade`)")


def set_setting(s: Services, name: str, key: str, value: str, dry_run: bool = False) -> None:
    if key in PUBLISHED_SETTINGS:
        return _set_published(s, name, key, value, dry_run)
    # a setting changes no deployment: nothing to reconcile first, no scheduler involved
    with changing(s, name, local_only=False, finish_interrupted=False) as state:
        new_events = decisions.decide_setting(state, key, value)
        if not new_events:
            s.out.step(f"{key} is already {value} on {name}")
            return
        if dry_run:
            s.out.step(f"Would set {key}={value} on {name} (dry run: nothing changed)")
            return
        commit(s, state, new_events)
        s.out.step(f"Set {key}={value} on {name}")


# Settings that change the rendered PowerSync config: a linked instance gets them through the
# publish path (one restart, readiness-gated, restored on failure), an unlinked one at link.
PUBLISHED_SETTINGS = ("telemetry",)


def _set_published(s: Services, name: str, key: str, value: str, dry_run: bool) -> None:
    from powersync_plugin.backend import backend_secrets
    from powersync_plugin.publishing import apply_preview, preview_plan, publish_or_restore

    with changing(s, name, dry_run) as state:
        new_events = decisions.decide_setting(state, key, value)
        if not new_events:
            s.out.step(f"{key} is already {value} on {name}: nothing to change")
            return
        if dry_run:
            s.out.step(f"Set {key}={value} on {name}")
            if state.link:
                s.print_plan(preview_plan(s, apply_preview(state, new_events)))
            else:
                s.out.detail(f"{name} is not linked: nothing to deploy now (applied at link); nothing changed")
            return
        if not state.link:
            commit(s, state, new_events)
            s.out.step(f"Set {key}={value} on {name}; {name} is not linked: applied at link")
            return
        state = s.record(state, new_events)
        s.out.header(f"Setting {key}={value} on {name}")
        publish_or_restore(s, state, backend_secrets(s, state), state.version)
