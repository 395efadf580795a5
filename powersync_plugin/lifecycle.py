"""An instance's life: create, upgrade, start/stop/restart, destroy."""
from __future__ import annotations

import secrets
import shutil
from typing import Callable, Optional

from powersync_plugin import settings, source_role
from powersync_plugin.backend import backend_reads, backend_secrets
from powersync_plugin.core import decisions, derive
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.names import check_app_name
from powersync_plugin.core.planner import INSTANCE_PORTS, Action, Kind, Plan
from powersync_plugin.core.state import InstanceState
from powersync_plugin.pipeline import changing, commit, restored_text
from powersync_plugin.publishing import apply_preview, observe_reads, preview_plan, publish_or_restore
from powersync_plugin.services import Services
from powersync_plugin.settings_commands import default_image_version
from powersync_plugin.teardown import drop_slots, drop_storage_database, require_dropped


def create(
    s: Services, name: str, image: str, image_version: Optional[str], memory: str, storage: str, dry_run: bool,
) -> None:
    check_app_name(name)
    image_version = image_version or default_image_version(s)
    # a name with no instance yet: no change to finish, and the app's scheduler is not chosen yet
    with changing(s, name, dry_run, local_only=False, finish_interrupted=False) as state:
        token = secrets.token_urlsafe(32)
        storage_uri = storage if decisions.storage_mode(storage) == "uri" else None
        new_events = decisions.decide_create(
            state, name, image, image_version, memory, storage, token,
            derive.fingerprint(storage_uri) if storage_uri else None,
        )
        if s.dokku.app_exists(name):
            raise DomainError(
                f"App {name} already exists: to manage a PowerSync app made by hand use "
                f"`dokku powersync:adopt {name}`, or pick another name"
            )
        memory_mb = new_events[0].payload["memory_mb"]
        env = {"NODE_OPTIONS": f"--max-old-space-size={decisions.node_heap_megabytes(memory_mb)}", "PS_API_TOKEN": token}
        if storage_uri:
            env["PS_STORAGE_SOURCE_URI"] = derive.normalise_source_uri(storage_uri)[0]
        if dry_run:
            s.print_plan(Plan((
                Action(Kind.CREATE_APP, name),
                Action(Kind.ADD_PORTS, name, detail=" ".join(INSTANCE_PORTS)),
                Action(Kind.SET_MEMORY, name, detail=f"{memory_mb}m"),
                Action(Kind.SET_CONFIG, name, keys=tuple(sorted(env))),
            )))
            return
        s.out.header(f"Creating PowerSync instance {name}")

        commit(
            s, state, new_events, lambda _: make_instance_app(s, name, memory_mb, env),
            undo=lambda _: s.dokku.app_exists(name) and s.dokku.apps_destroy(name),
            failed=lambda exc, restored: f"Creating {name} failed: {exc}\n" + restored_text(restored, f"app {name} removed"),
        )
        s.out.detail(f"Image: {image}:{image_version} (deployed when a backend is linked)")
        s.out.detail(f"Memory: {memory_mb}m, Node heap {decisions.node_heap_megabytes(memory_mb)} MB")
        s.out.detail(f"Storage: {new_events[0].payload['storage']}")
        s.out.step(f"Next: dokku powersync:set-rules {name} < sync-rules.yaml; dokku powersync:link {name} <backend-app>")


def make_instance_app(s: Services, name: str, memory_mb: int, env: dict[str, str], domains: tuple[str, ...] = ()) -> None:
    """The Dokku app of a new instance (create, import): nothing deployed until a backend is linked."""
    s.dokku.apps_create(name)
    if domains:  # before the ports: Dokku's domains:set empties the ports map
        s.dokku.domains_set(name, *domains)
    s.dokku.ports_add(name, *INSTANCE_PORTS)
    s.dokku.memory_limit(name, f"{memory_mb}m")
    s.dokku.config_set(name, env, restart=False)


def upgrade(s: Services, name: str, image: Optional[str], image_version: Optional[str], force: bool, dry_run: bool) -> None:
    with changing(s, name, dry_run, read_ahead=None if dry_run else _upgrade_reads) as state:
        decisions.require_live(state)
        target_image = image or state.image
        target_version = image_version or default_image_version(s)
        reference = f"{target_image}:{target_version}"
        found = s.docker.image(reference)
        if found is None and not dry_run:
            s.out.step(f"Pulling {reference}")
            found = s.docker.pull(reference)
        digest = found.digest if found else "unknown"
        if image is None and state.image != settings.DEFAULT_IMAGE:
            s.out.step(f"Keeping the custom image {state.image} (pass --image to change it)")
        new_events = decisions.decide_upgrade(state, target_image, target_version, digest, force, image is not None)
        if not new_events:
            s.out.step(f"{name} already runs {state.image}:{state.image_version}: nothing to upgrade")
            return
        if dry_run:
            after = apply_preview(state, new_events)
            s.out.step(f"Upgrade {state.image}:{state.image_version} -> {after.image}:{after.image_version}")
            if state.link:
                s.print_plan(preview_plan(s, after))
            return
        if not state.link:
            state = commit(s, state, new_events)
            s.out.header(f"Upgrading {name} to {state.image}:{state.image_version} ({digest[:19]})")
            s.out.step(f"{name} is not linked: the new version is deployed at link")
            return
        state = s.record(state, new_events)
        s.out.header(f"Upgrading {name} to {state.image}:{state.image_version} ({digest[:19]})")
        publish_or_restore(s, state, backend_secrets(s, state), state.version)


def _upgrade_reads(state: InstanceState) -> list[tuple]:
    """What a linked instance's upgrade reads (read_ahead.py): the backend's secrets and what the
    publish observes; an unlinked one only records the new version."""
    if state.link is None:
        return []
    return backend_reads(state) + observe_reads(state.name, source_image=True, host=True)


def start_stop(s: Services, name: str, action: str) -> int:
    """start, stop, restart: Dokku's ps:* on the instance app, once it is deployed."""
    state = s.load(name)
    decisions.require_live(state)
    if state.link is None and action != "stop":
        raise DomainError(f"{name} is not deployed yet: `dokku powersync:link {name} <backend>` deploys it")
    return s.dokku.passthrough(f"ps:{action}", name)


def destroy(s: Services, name: str, force: bool, confirm: Callable[[str], bool], dry_run: bool) -> None:
    with changing(s, name, dry_run) as state:
        new_events = decisions.decide_destroy(state)
        service = state.last_postgres_service
        actions = []
        if service:
            actions.append(Action(Kind.DROP_SLOTS, service, detail=f"{state.slot_prefix}* (any left)"))
        if state.storage_database and service:
            actions.append(Action(Kind.DROP_STORAGE, service, detail=state.storage_database))
        actions.extend(source_role.drop_actions(state, service))
        actions.append(Action(Kind.DESTROY_APP, name))
        if dry_run:
            s.print_plan(Plan(tuple(actions)))
            return
        if not force and not confirm(name):
            raise DomainError(f"Confirmation did not match {name}: nothing destroyed (use --force to skip the prompt)")
        s.out.header(f"Destroying PowerSync instance {name}")
        commit(
            s, state, new_events, lambda current: apply_destroy(s, current),
            failed=lambda exc, _: f"Destroying {name} failed part-way: {exc}\nRun the same command again to finish it",
        )
        s.out.step(f"{name} destroyed; `dokku powersync:history {name}` still shows its past")


def apply_destroy(s: Services, state: InstanceState) -> None:
    """Idempotent, like linking.apply_unlink: an interrupted destroy is finished by running it again."""
    name = state.name
    service = state.last_postgres_service
    if service and s.dokku.postgres_exists(service):
        require_dropped(s, drop_slots(s, state, service) + drop_storage_database(s, state, service) + source_role.drop(s, state, service))
    if s.dokku.app_exists(name):
        s.out.step(f"Destroying app {name}")
        s.dokku.apps_destroy(name)
    shutil.rmtree(settings.instance_dir(name), ignore_errors=True)
