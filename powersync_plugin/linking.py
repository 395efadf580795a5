"""Linking a backend: link (derive, deploy, prove auth end to end), unlink, rotate."""
from __future__ import annotations

import time
from typing import Optional

from powersync_plugin import access, source_role
from powersync_plugin.adapters.powersync_api import PowerSyncApi
from powersync_plugin.adapters.preload import Preload
from powersync_plugin.backend import (
    DERIVED_KEYS, BackendSecrets, backend_values, instance_url, linked_service, points_here, serves_source,
    storage_uri,
)
from powersync_plugin.core import decisions, derive
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.names import check_app_name, check_existing_app_name, storage_database
from powersync_plugin.core.planner import Action, Kind, Plan
from powersync_plugin.core.state import InstanceState
from powersync_plugin.pipeline import changing, commit, restored_text
from powersync_plugin.publishing import apply_preview, observe_reads, preview_plan, publish, publish_or_restore
from powersync_plugin.read_side import instances_linked_to
from powersync_plugin.rules import check_rules_offline
from powersync_plugin.services import Services
from powersync_plugin.source_setup import check_source, ensure_storage_database, link_database
from powersync_plugin.teardown import drop_slots, proven_slots, require_dropped, run_teardown

CHECK_SUBJECT = "dokku-powersync-link-check"


def link(
    s: Services, name: str, backend: str, no_restart: bool, kid: Optional[str], audience: tuple[str, ...],
    configure_source: bool, dry_run: bool, role_mode: str = source_role.SUPERUSER,
) -> None:
    check_app_name(name)
    check_existing_app_name(backend)
    access.require_app(s, "powersync:link", backend, f"linking copies {backend}'s SECRET_KEY into {name}")
    with changing(s, name, dry_run) as state:
        decisions.require_linkable(state, backend)
        _require_backend_free(name, backend)
        preload = Preload()  # only Dokku is called until preload.wait()
        if not s.dokku.app_exists(backend):
            raise DomainError(f"App {backend} does not exist: link an existing backend app")
        backend_env = s.dokku.config(backend)
        secret_key, raw_source = backend_values(backend, backend_env)
        s.out.redactor.add(secret_key, derive.secret_key_b64(secret_key), raw_source)
        source_uri, source_sslmode = derive.normalise_source_uri(raw_source)
        service = linked_service(s, backend, source_uri)
        if state.storage == "separate-database" and service is None:
            raise DomainError(
                f"{name} keeps its storage in a separate database on the source server, which the plugin can only "
                f"create on a dokku-postgres service; {backend}'s DATABASE_URL is not the DSN of one linked to it "
                f"(`dokku postgres:app-links {backend}`). Recreate the instance "
                "with --storage same-database or --storage postgresql://..."
            )
        url = instance_url(s, name)
        if url is None:
            raise DomainError(
                f"{name} has no domain, so there is no POWERSYNC_URL to give {backend}: "
                f"`dokku domains:set {name} <domain>` first"
            )
        source_actions: list[Action] = []
        if service is not None:
            source_actions = check_source(s, service, configure_source, dry_run)
        else:
            s.out.warn(
                f"The source is not a dokku-postgres service linked to {backend}: its prerequisites are checked "
                "when the instance starts"
            )
        storage_db = storage_database(name) if state.storage == "separate-database" else None
        # dokku-postgres serves no TLS; elsewhere PowerSync's own default applies unless the URI
        # asked for a mode (storage on the same server inherits the source's).
        sslmode = source_sslmode or ("disable" if service else "verify-full")
        new_events = decisions.decide_link(
            state, backend, service, derive.fingerprint(source_uri), derive.fingerprint(secret_key),
            audience or (backend,), kid, url, storage_db, sslmode, sslmode,
        )
        new_events = source_role.plan_link(s, state, role_mode, backend, service, new_events)
        preload.wait()
        if state.current_rules is not None and not s.is_running(name):
            # rules recorded before set-rules checked them offline would make the service exit
            check_rules_offline(s, state, state.current_rules.content, dry_run, f"rules r{state.current_rules.number}")
        sets_url = backend_env.get("POWERSYNC_URL") != url
        if dry_run:
            actions = list(source_actions)
            if service:
                actions.append(Action(Kind.LINK_DATABASE, name, detail=f"postgres service {service}"))
            if storage_db:
                actions.append(Action(Kind.CREATE_STORAGE, service or "", detail=storage_db))
            actions.extend(source_role.planned_actions(state, role_mode, service))
            actions.extend(preview_plan(s, apply_preview(state, new_events)).actions)
            if sets_url:
                actions.append(Action(Kind.SET_BACKEND_URL, backend, detail=url, restarts=not no_restart))
            s.print_plan(Plan(tuple(actions)))
            return
        s.out.header(f"Linking {name} to {backend}")
        was_running = s.is_running(name)
        linked_database = False

        def deploy(state: InstanceState) -> None:
            nonlocal linked_database
            if service is not None:
                linked_database = link_database(s, service, name, raw_source)
            instance_env = s.dokku.config(name)
            linked_uri = instance_env.get("DATABASE_URL") if service else raw_source
            if not linked_uri:
                raise DomainError(f"postgres:link did not give {name} a DATABASE_URL")
            source_from_link = derive.normalise_source_uri(linked_uri)[0]
            if storage_db:
                ensure_storage_database(s, service, storage_db)
            source_from_link = source_role.prepare(s, state, service, source_from_link)
            storage = storage_uri(state, source_from_link, instance_env)
            s.out.redactor.add(source_from_link, storage or "")
            publish(s, state, BackendSecrets(secret_key, source_from_link, storage))
            _prove_auth(s, state, secret_key)

        def give_backend_url(_: InstanceState) -> None:
            if sets_url:
                s.out.step(f"Setting POWERSYNC_URL={url} on {backend}" + ("" if no_restart else " (restarts it)"))
                s.dokku.config_set(backend, {"POWERSYNC_URL": url}, restart=not no_restart)
            else:
                s.out.step(f"POWERSYNC_URL on {backend} is already {url}: {backend} not restarted")

        commit(
            s, state, new_events, deploy, then=give_backend_url,
            undo=lambda _: _undo_link(s, s.load(name), service, linked_database, was_running),
            failed=lambda exc, restored: f"Linking {name} to {backend} failed: {exc}\n"
            + restored_text(restored, f"{name} unlinked and its derived config removed; {backend} untouched"),
        )
        s.out.step(f"{name} is linked to {backend} and serving {url}")


def _require_backend_free(name: str, backend: str) -> None:
    """A backend hands its clients one POWERSYNC_URL: linking a second instance would silently
    repoint every client of the first."""
    others = [other for other in instances_linked_to(backend) if other != name]
    if others:
        raise DomainError(
            f"{backend} is already linked to PowerSync instance {others[0]} (its POWERSYNC_URL points there): "
            f"one instance per backend; `dokku powersync:unlink {others[0]} {backend}` first"
        )


def _prove_auth(s: Services, state: InstanceState, secret_key: str) -> None:
    """Open a sync stream with a token signed exactly as the backend signs."""
    now = int(time.time())
    claims = {"sub": CHECK_SUBJECT, "aud": state.audience[0], "iat": now, "exp": now + 60}
    token = derive.sign_hs256(secret_key.encode("utf-8"), claims, state.kid)
    container = s.docker.web_container(state.name)
    result = PowerSyncApi(s.docker, container.id, state.api_token).open_sync_stream(token)
    if _no_rules_yet(result):
        # The service authenticates a stream before it looks for rules (authorize, then the
        # handler): this refusal is given only to a token it accepted.
        s.out.step(f"Auth checked end to end: a token signed like {state.link.backend}'s was accepted "
                   f"(no rules are active yet, so no stream: `dokku powersync:set-rules {state.name}` deploys them)")
        return
    if not result.ok:
        body = s.out.redactor.text(result.body[:300] or result.error)
        raise DomainError(
            f"A token signed like {state.link.backend}'s (HS256, aud={state.audience[0]}, "
            f"kid={state.kid or 'none'}) was refused: HTTP {result.status} {body}"
        )
    s.out.step(f"Auth checked end to end: a token signed like {state.link.backend}'s opened a sync stream")


def _no_rules_yet(result) -> bool:
    """The service's answer to an authenticated stream while no rules are active: 500 PSYNC_S2302."""
    payload = result.json() if result.status == 500 else None
    error = payload.get("error") if isinstance(payload, dict) else None
    return isinstance(error, dict) and error.get("code") == "PSYNC_S2302"


def _undo_link(s: Services, state: InstanceState, service: Optional[str], linked_database: bool, was_running: bool) -> None:
    name = state.name
    if not was_running and s.is_running(name):
        s.dokku.stop(name)
    keys = [key for key in DERIVED_KEYS if key in s.dokku.config_keys(name)]
    s.dokku.config_unset(name, keys, restart=False)
    if linked_database and service:
        s.dokku.postgres_unlink(service, name)
    require_dropped(s, source_role.drop(s, state, service))


def unlink(s: Services, name: str, backend: str, no_restart: bool, keep_slots: bool, dry_run: bool) -> None:
    access.require_app(s, "powersync:unlink", backend, f"unlinking removes {backend}'s POWERSYNC_URL and restarts it")
    with changing(s, name, dry_run) as state:
        new_events = decisions.decide_unlink(state, backend, keep_slots)
        service, url = state.link.postgres_service, state.link.url
        if dry_run:
            s.print_plan(_unlink_plan(s, state, backend, no_restart, keep_slots))
            return
        s.out.header(f"Unlinking {name} from {backend}")
        commit(
            s, state, new_events,
            lambda current: apply_unlink(s, name, backend, service, current, no_restart, keep_slots, url),
            failed=lambda exc, _: f"Unlinking {name} failed part-way: {exc}\nRun `dokku powersync:reconcile {name}` to finish it",
        )
        s.out.step(f"{name} unlinked from {backend}")


def _unlink_plan(s: Services, state: InstanceState, backend: str, no_restart: bool, keep_slots: bool) -> Plan:
    """What apply_unlink would do (it re-checks each step itself, so a real run skips this)."""
    name, service = state.name, state.link.postgres_service
    actions = []
    if (
        s.dokku.app_exists(backend) and "POWERSYNC_URL" in s.dokku.config_keys(backend)
        and points_here(s, backend, state.link.url)
    ):
        actions.append(Action(Kind.UNSET_BACKEND_URL, backend, restarts=not no_restart))
    actions.append(Action(Kind.STOP, name))
    if not keep_slots:
        actions.append(Action(Kind.TEARDOWN, name, detail=f"slots {state.slot_prefix}* and storage tables"))
    if service:
        actions.append(Action(Kind.UNLINK_DATABASE, name, detail=f"postgres service {service}"))
    actions.append(Action(Kind.UNSET_CONFIG, name, keys=DERIVED_KEYS))
    return Plan(tuple(actions + source_role.drop_actions(state, service)))


def apply_unlink(
    s: Services, name: str, backend: str, service: Optional[str], state: InstanceState, no_restart: bool,
    keep_slots: bool, url: Optional[str],
) -> None:
    """Every step checks before it acts, so an interrupted unlink can simply run again."""
    if s.dokku.app_exists(backend) and "POWERSYNC_URL" in s.dokku.config_keys(backend):
        if points_here(s, backend, url):
            s.out.step(f"Removing POWERSYNC_URL from {backend}" + ("" if no_restart else " (restarts it)"))
            s.dokku.config_unset(backend, ["POWERSYNC_URL"], restart=not no_restart)
        else:
            s.out.warn(f"POWERSYNC_URL on {backend} no longer points at {name} ({url}): left as it is")
    proven = proven_slots(s, state)
    if s.is_running(name):
        s.out.step(f"Stopping {name}")
        s.dokku.stop(name)
    if keep_slots:
        s.out.warn(
            f"--keep-slots: the replication slots {state.slot_prefix}* stay on the source and retain WAL "
            "until dropped; destroy the instance or drop them before lowering wal_level"
        )
    elif "PS_DATA_SOURCE_URI" in s.dokku.config_keys(name):
        run_teardown(s, name, state, service, proven)
    elif service:
        require_dropped(s, drop_slots(s, state, service, proven))
    if service and name in s.dokku.postgres_links(service):
        s.dokku.postgres_unlink(service, name)
    keys = [k for k in DERIVED_KEYS + ("DATABASE_URL",) if k in s.dokku.config_keys(name)]
    s.dokku.config_unset(name, keys, restart=False)
    require_dropped(s, source_role.drop(s, state, service))


def rotate(s: Services, name: str, cause: str, from_hook: bool = False) -> None:
    """Re-derive the instance from its backend's current SECRET_KEY and DATABASE_URL."""
    with changing(s, name, read_ahead=lambda state: _rotate_reads(state, from_hook)) as state:
        decisions.require_live(state)
        if state.link is None:
            raise DomainError(f"{name} is not linked: nothing to rotate")
        backend = state.link.backend
        env = s.reads.take("config", backend)
        missing = [key for key in ("SECRET_KEY", "DATABASE_URL") if not env.get(key)]
        if missing:
            s.record(state, [ev.NewEvent(ev.BACKEND_CHANGED, {"cause": f"{' and '.join(missing)} removed from {backend}"})])
            raise DomainError(
                f"{backend} no longer has {' or '.join(missing)}: {name} was left as it is and keeps "
                f"accepting tokens signed with the previous secret. Restore it on {backend}, then run "
                f"`dokku powersync:rotate {name}`"
            )
        secret_key = env["SECRET_KEY"]
        s.out.redactor.add(secret_key, derive.secret_key_b64(secret_key), env["DATABASE_URL"])
        source_uri, _ = derive.normalise_source_uri(env["DATABASE_URL"])
        # The same DATABASE_URL the journal last verified (link, rotate) reaches the same service.
        same_source = derive.fingerprint(source_uri) == state.link.source_fingerprint
        if not same_source and not serves_source(s, backend, state.link.postgres_service, source_uri):
            raise DomainError(
                f"{backend}'s DATABASE_URL now points at another database server: relink "
                f"(`dokku powersync:unlink {name} {backend}` then `link`) so slots and storage move with it"
            )
        if from_hook and not state.auto_rotate:
            s.record(state, [ev.NewEvent(ev.BACKEND_CHANGED, {"cause": cause})])
            s.out.warn(f"{name} is now stale ({cause}); auto-rotate is off: run `dokku powersync:rotate {name}`")
            return
        source_role.refresh_grants(s, state)
        new_events = decisions.decide_rotation(state, derive.fingerprint(secret_key), derive.fingerprint(source_uri), cause)
        if not new_events:
            s.out.step(f"{name} already uses {backend}'s current secret and source")
            return
        s.out.header(f"Rotating {name}: {cause}")
        state = s.record(state, new_events)
        source_uri = source_role.source_dsn(s, state, source_uri)
        storage = storage_uri(state, source_uri, s.reads.take("config", name))
        # The image stays unless the derived image changed: the restore target is read only then.
        publish_or_restore(s, state, BackendSecrets(secret_key, source_uri, storage), state.version, source_image=False)


def _rotate_reads(state: InstanceState, from_hook: bool) -> list[tuple]:
    """What rotate reads (read_ahead.py): the backend's config; when it will publish, also the
    instance's config and what the publish observes. The source service's DSN is asked only when
    the backend's DATABASE_URL is not the one the journal recorded."""
    if state.link is None:
        return []
    if from_hook and not state.auto_rotate:
        return [("config", state.link.backend)]  # the instance is only marked stale
    return [("config", state.link.backend), ("config", state.name)] + observe_reads(state.name, host=True)
