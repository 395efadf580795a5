"""`powersync:set`: an instance's settings, and the plugin-wide default image version."""
from __future__ import annotations

from powersync_plugin import access, settings
from powersync_plugin.core import decisions, service_settings
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


def set_setting(s: Services, name: str, key: str, value: str, dry_run: bool = False, no_restart: bool = False) -> None:
    if key in PUBLISHED_SETTINGS:
        return _set_published(s, name, key, value, dry_run, no_restart)
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


# Settings that change the deployed service: a linked instance gets them through the publish
# path (one restart, readiness-gated, restored on failure), an unlinked one at link.
PUBLISHED_SETTINGS = ("telemetry", *service_settings.FIELDS)


def _set_published(s: Services, name: str, key: str, value: str, dry_run: bool, no_restart: bool = False) -> None:
    from powersync_plugin.backend import backend_secrets
    from powersync_plugin.publishing import apply_preview, preview_plan, publish_or_restore

    with changing(s, name, dry_run) as state:
        new_events = decisions.decide_setting(state, key, value)
        if not new_events:
            s.out.step(f"{key} is already {value} on {name}: nothing to change")
            return
        value = new_events[0].payload["value"]  # canonical: 1g -> 1024m, DEBUG -> debug
        if dry_run:
            s.out.step(f"Set {key}={value} on {name}")
            if state.link and not no_restart:
                s.print_plan(preview_plan(s, apply_preview(state, new_events)))
            elif not state.link:
                s.out.detail(f"{name} is not linked: nothing to deploy now (applied at link); nothing changed")
            else:
                s.out.detail("--no-restart: the setting would only be recorded; nothing changed")
            return
        if not state.link:
            commit(s, state, new_events)
            s.out.step(f"Set {key}={value} on {name}; {name} is not linked: applied at link")
            return
        if no_restart:
            # Dokku's --no-restart: recorded, not deployed; the history shows it stored until a
            # publish (reconcile, or any later change) carries it with its one restart.
            deferred = [ev.NewEvent(e.type, {**e.payload, "deferred": True}) for e in new_events]
            s.record(state, deferred)
            s.out.step(
                f"Set {key}={value} on {name} (--no-restart: not applied yet); "
                f"`dokku powersync:reconcile {name}` applies it with one restart"
            )
            return
        state = s.record(state, new_events)
        s.out.header(f"Setting {key}={value} on {name}")
        publish_or_restore(s, state, backend_secrets(s, state), state.version)


def compact(s: Services, name: str) -> None:
    """`compact` in a one-off container of the instance (Dokku's `run`): the image's entrypoint
    is `node service/lib/entry.js`, so `compact` is its argument, as in the app.json cron entry."""
    state = s.load(name)
    decisions.require_live(state)
    if state.link is None:
        raise DomainError(f"{name} is not linked: there is no bucket storage to compact yet")
    s.out.header(f"Compacting the bucket storage of {name}")
    result = s.dokku.run_oneoff(name, *service_settings.COMPACT_COMMAND)
    for line in s.out.redactor.text(result.stdout + result.stderr).splitlines():
        s.out.detail(line)
    if result.returncode != 0:
        raise DomainError(f"Compaction of {name} failed (exit {result.returncode}): see the output above")
    s.out.step(f"Compacted {name}")
