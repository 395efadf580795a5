"""What the plugin does when Dokku changes an app under it (the triggers' use cases): a backend's
config changed, an app is destroyed, renamed or cloned, an instance's domains or certificate
changed. hook_handlers.py maps each trigger to one of these."""
from __future__ import annotations

import secrets
from dataclasses import replace

from powersync_plugin import settings, source_role
from powersync_plugin.adapters.locks import Busy, instance_lock
from powersync_plugin.backend import DERIVED_KEYS, instance_url
from powersync_plugin.core import decisions
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.planner import RULES_OVERRIDES
from powersync_plugin.core.state import InstanceState
from powersync_plugin.linking import rotate, unlink
from powersync_plugin.pipeline import commit
from powersync_plugin.read_side import instances_linked_to
from powersync_plugin.reconcile import follow_url
from powersync_plugin.services import Services
from powersync_plugin.source_database import Leftover, drop_schema_command, list_slots_command
from powersync_plugin.teardown import drop_slots, drop_storage_database, proven_slots

def on_backend_config_change(s: Services, backend: str, action: str, changed: list[str]) -> None:
    """post-config-update on a linked backend whose SECRET_KEY or DATABASE_URL (`changed`, by
    `action`: set, unset, clear) changed: rotate the instances linked to it."""
    for name in instances_linked_to(backend):
        cause = f"{' and '.join(changed)} {'cleared' if action == 'clear' else action} on {backend}"
        try:
            rotate(s, name, cause, from_hook=True)
        except DomainError as exc:
            s.out.warn(str(exc))


def on_app_destroy(s: Services, app: str) -> None:
    """pre-delete: an instance app destroyed with apps:destroy, or a linked backend going away."""
    if s.load(app).live:
        try:
            with instance_lock(settings.locks_dir(), app, lambda _: None, timeout=0):
                _destroyed_by_dokku(s, s.load(app))
        except Busy:
            pass  # a powersync command holds the instance (create undoing itself): it records the outcome
    for name in instances_linked_to(app):
        s.out.step(f"{app} is being destroyed: unlinking PowerSync instance {name}")
        try:
            unlink(s, name, app, no_restart=True, keep_slots=False, dry_run=False)
        except DomainError as exc:
            s.out.warn(f"Could not unlink {name} from {app}: {exc}")


def _destroyed_by_dokku(s: Services, state: InstanceState) -> None:
    """Dokku fires pre-delete before it stops the app, and a running PowerSync holds its slot
    active, which Postgres refuses to drop: stop the instance first (as Dokku's scheduler-stop
    is about to), then drop its slots and storage database. Whatever stays is recorded and
    said, with the command that removes it; the trigger itself never fails the destroy."""
    app, service = state.name, state.last_postgres_service
    left: list[Leftover] = []
    if service:
        proven = proven_slots(s, state)
        if s.docker.stop_app_containers(app):
            s.out.step(f"Stopped {app} so its replication slots can be dropped")
        try:
            if s.dokku.postgres_exists(service):
                left = drop_slots(s, state, service, proven) + drop_storage_database(s, state, service)
                left += source_role.drop(s, state, service)
        except DomainError as exc:
            left = [Leftover(f"the slots and storage of {app} on {service}", str(exc).splitlines()[0],
                             f"list them with {list_slots_command(service, state.slot_prefix)}")]
        if state.storage == "same-database":
            # The storage tables sit in the source database; only the service's own teardown
            # (which needs the app) knows them, so they are named rather than guessed at.
            left.append(Leftover(f"the storage tables of {app} (schema powersync of {service}'s database)",
                                 "same-database storage is not dropped without the app", drop_schema_command(service)))
    payload = {"cause": "apps:destroy"}
    if left:
        payload["left"] = [str(item) for item in left]
    commit(s, state, [ev.NewEvent(ev.INSTANCE_DESTROYED, payload)])
    if left:
        s.out.warn(f"{app} was a PowerSync instance: recorded as destroyed, but these are left:")
        for item in left:
            s.out.warn(f"  - {item}")
    elif service:
        s.out.warn(f"{app} was a PowerSync instance: recorded as destroyed; its replication slots and storage were dropped")
    else:
        s.out.warn(f"{app} was a PowerSync instance: recorded as destroyed")


def on_app_rename_setup(s: Services, old: str, new: str) -> None:
    """post-app-rename-setup: Dokku has created `new` and copied `old`'s config, domains and
    links to it, and is about to destroy `old` (its pre-delete must then find nothing to do).
    An instance keeps its slots, storage and API token, so the rebuild Dokku runs next
    resumes replication where `old` stopped."""
    if s.load(old).live:
        with s.lock(old), s.lock(new):
            state = s.load(old)
            s.journal.continue_stream(
                old, state.version, new,
                ev.NewEvent(ev.INSTANCE_RENAMED, {"to": new}), ev.NewEvent(ev.INSTANCE_RENAMED_FROM, {"from": old}),
                s.actor, s.command,
            )
            s.out.step(
                f"PowerSync instance {old} is now {new}: same slots ({state.slot_prefix}*), storage and rules; "
                f"`dokku powersync:history {new}` continues its history"
            )
    for name in instances_linked_to(old):
        with s.lock(name):
            instance = s.load(name)
            if instance.link is None or instance.link.backend != old:
                continue
            s.record(instance, [ev.NewEvent(ev.BACKEND_RENAMED, {"from": old, "to": new})])
            s.out.step(f"PowerSync instance {name} is now linked to {new} (was {old})")


def on_app_renamed(s: Services, old: str, new: str) -> None:
    """post-app-rename: a renamed instance whose domain followed the app name (the global
    vhost) serves another URL now; its backend must hand clients the new one."""
    on_url_inputs_changed(s, new, f"apps:rename {old} {new}", f"{old} is now {new}")


def on_url_inputs_changed(s: Services, name: str, cause: str, why: str) -> None:
    """post-domains-update / post-certs-update / post-certs-remove (and post-app-rename): the
    instance's domain or certificate changed, so maybe its URL; slots and config untouched."""
    state = s.load(name)
    if not state.live or state.link is None or instance_url(s, name) == state.link.url:
        return  # cheap checks first: these triggers fire for every app
    with s.lock(name):
        follow_url(s, name, cause, why)


def on_app_clone_setup(s: Services, old: str, new: str) -> None:
    """post-app-clone-setup: Dokku copied `old`'s config to `new`. A copy of an instance's
    deployed config would run a second PowerSync on the same slots and storage with the same
    API token, so `new` becomes a separate instance instead: `old`'s settings and current
    rules, a fresh token, its own slot prefix, nothing deployed until linked."""
    source = s.load(old)
    if source.live:
        with s.lock(new):
            _clone_instance(s, source, new)
    for name in instances_linked_to(old):
        s.out.warn(
            f"{new} is a copy of {old}, which PowerSync instance {name} trusts: {new} keeps POWERSYNC_URL and "
            f"SECRET_KEY but is not linked, so its key changes do not rotate {name}"
        )


def _clone_instance(s: Services, source: InstanceState, new: str) -> None:
    state = s.load(new)
    storage = source.storage
    if storage == "uri":
        storage = "separate-database"
        s.out.warn(f"{source.name} keeps its storage at its own URI; {new} gets a separate database on its source instead")
    token = secrets.token_urlsafe(32)
    new_events = decisions.decide_create(
        state, new, source.image, source.image_version, f"{source.memory_mb}m", storage, token, None,
    )
    new_events[0] = ev.NewEvent(ev.INSTANCE_CREATED, {**new_events[0].payload, "cloned_from": source.name})
    rules = source.current_rules
    if rules is not None:
        copied = decisions.decide_set_rules(replace(state, created=True, destroyed=False, renamed_to=None, current_rules=None), rules.content)
        new_events.append(ev.NewEvent(ev.RULES_SET, {**copied[0].payload, "description": f"Copied from {source.name} r{rules.number}"}))
    owned = {*DERIVED_KEYS, "POWERSYNC_CONFIG_B64", *RULES_OVERRIDES}
    service = source.link.postgres_service if source.link else None

    def unshare(_: InstanceState) -> None:
        if service and new in s.dokku.postgres_links(service):
            # dokku-postgres linked the clone too; an unlinked instance has no source link.
            s.dokku.postgres_unlink(service, new)
        keys = [key for key in s.dokku.config_keys(new) if key in owned]
        if keys:
            s.dokku.config_unset(new, keys, restart=False)
        s.dokku.config_set(new, {"PS_API_TOKEN": token}, restart=False)

    commit(s, state, new_events, unshare)  # the instance.created event is the intent settled
    s.out.step(
        f"{new} is a new PowerSync instance with {source.name}'s settings and rules (own slots and API token); "
        f"it runs once linked: `dokku powersync:link {new} <backend-app>`"
    )
    s.out.warn(
        f"Until then a deploy of {new} fails (it has no config): clone with `dokku apps:clone --skip-deploy`"
    )
