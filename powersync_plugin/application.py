"""Application services: one function per command.

Each mutating command: lock the instance; load and fold its events; decide (pure); resolve every
fact needed to verify the change before the first write (fail closed); append the intent; plan
(pure) against what is observed; apply; record the outcome. A failure after the append is
compensated and recorded, and the command exits non-zero saying what was restored.
"""
from __future__ import annotations

import base64
import secrets as secrets_module
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, Optional

from powersync_plugin import settings
from powersync_plugin.adapters.docker_engine import DockerEngine, ImageView, derived_tag
from powersync_plugin.adapters.dokku import Dokku
from powersync_plugin.adapters.journal import Journal
from powersync_plugin.adapters.locks import Busy, instance_lock
from powersync_plugin.adapters.preload import Preload
from powersync_plugin.adapters.powersync_api import PowerSyncApi, slots_in_use, summarize_diagnostics
from powersync_plugin.core import adoption, config_render, decisions, derive
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.names import check_app_name, check_existing_app_name, storage_database
from powersync_plugin.core.planner import INSTANCE_PORTS, RULES_OVERRIDES, Action, Kind, Observed, Plan, plan_publish
from powersync_plugin.core.projector import apply, project
from powersync_plugin.core.rules import check_rules, decode_rules
from powersync_plugin.core.state import InstanceState
from powersync_plugin.output import Output
from powersync_plugin.queries import rules_diff, summary_json
from powersync_plugin.source_database import (
    Leftover, SourceDatabase, drop_database_command, drop_schema_command, drop_slot_command, list_slots_command,
)

DERIVED_KEYS = ("PS_SECRET_KEY_B64", "PS_DATA_SOURCE_URI", "PS_STORAGE_SOURCE_URI")
CHECK_SUBJECT = "dokku-powersync-link-check"


class CommandFailed(DomainError):
    """A change was attempted, failed, and was compensated (the message says how)."""


@dataclass
class BackendSecrets:
    secret_key: str
    source_uri: str  # normalised, as read back from the instance's link
    storage_uri: Optional[str]


class Application:
    def __init__(self, out: Output, dokku: Dokku, docker: DockerEngine, actor: str, command: str):
        self.out = out
        self.dokku = dokku
        self.docker = docker
        self.actor = actor
        self.command = command
        self.source_db = SourceDatabase(dokku)
        self._journal: Optional[Journal] = None
        self.waited = 0.0  # seconds spent waiting for readiness and stay-up (benchmarks subtract it)

    # --- journal -------------------------------------------------------------------------
    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(settings.journal_path())
        return self._journal

    def load(self, name: str) -> InstanceState:
        return project(name, self.journal.load(name))

    def _record(self, state: InstanceState, new_events: list[ev.NewEvent]) -> InstanceState:
        stored = self.journal.append(state.name, state.version, new_events, self.actor, self.command)
        for event in stored:
            state = apply(state, event)
        self.journal.save_summary(state.name, state.version, summary_json(state))
        return state

    def _lock(self, name: str):
        return instance_lock(
            settings.locks_dir(), name, self.out.step, settings.seconds("POWERSYNC_LOCK_TIMEOUT", 600)
        )

    # --- create --------------------------------------------------------------------------
    def create(self, name: str, image: str, image_version: Optional[str], memory: str, storage: str, dry_run: bool) -> None:
        check_app_name(name)
        image_version = image_version or self.default_image_version()
        with self._lock(name):
            state = self.load(name)
            token = secrets_module.token_urlsafe(32)
            storage_uri = storage if decisions.storage_mode(storage) == "uri" else None
            new_events = decisions.decide_create(
                state, name, image, image_version, memory, storage, token,
                derive.fingerprint(storage_uri) if storage_uri else None,
            )
            if self.dokku.app_exists(name):
                raise DomainError(
                    f"App {name} already exists: to manage a PowerSync app made by hand use "
                    f"`dokku powersync:adopt {name}`, or pick another name"
                )
            memory_mb = new_events[0].payload["memory_mb"]
            env = {"NODE_OPTIONS": f"--max-old-space-size={decisions.node_heap_megabytes(memory_mb)}", "PS_API_TOKEN": token}
            if storage_uri:
                env["PS_STORAGE_SOURCE_URI"] = derive.normalise_source_uri(storage_uri)[0]
            plan = Plan((
                Action(Kind.CREATE_APP, name),
                Action(Kind.ADD_PORTS, name, detail=" ".join(INSTANCE_PORTS)),
                Action(Kind.SET_MEMORY, name, detail=f"{memory_mb}m"),
                Action(Kind.SET_CONFIG, name, keys=tuple(sorted(env))),
            ))
            if dry_run:
                self._print_plan(plan)
                return
            self.out.header(f"Creating PowerSync instance {name}")
            state = self._record(state, new_events)
            cause = state.version
            try:
                self.dokku.apps_create(name)
                self.dokku.ports_add(name, *INSTANCE_PORTS)
                self.dokku.memory_limit(name, f"{memory_mb}m")
                self.dokku.config_set(name, env, restart=False)
            except DomainError as exc:
                restored = self._compensate(lambda: self.dokku.app_exists(name) and self.dokku.apps_destroy(name))
                self._record(state, [decisions.outcome(cause, False, str(exc), restored)])
                raise CommandFailed(f"Creating {name} failed: {exc}\n" + _restored_text(restored, f"app {name} removed")) from None
            self._record(state, [decisions.outcome(cause, True)])
            self.out.detail(f"Image: {image}:{image_version} (deployed when a backend is linked)")
            self.out.detail(f"Memory: {memory_mb}m, Node heap {decisions.node_heap_megabytes(memory_mb)} MB")
            self.out.detail(f"Storage: {new_events[0].payload['storage']}")
            self.out.step(f"Next: dokku powersync:set-rules {name} < sync-rules.yaml; dokku powersync:link {name} <backend-app>")

    # --- set-rules -----------------------------------------------------------------------
    def set_rules(self, name: str, raw: bytes, dry_run: bool) -> None:
        content = decode_rules(raw)
        check_rules(content)
        with self._lock(name):
            state = self._load_reconciled(name, dry_run)
            decisions.require_live(state)
            self._set_rules_locked(state, content, dry_run)

    def rollback_rules(self, name: str, to: Optional[int], dry_run: bool, force: bool, confirm: Callable[[str], bool]) -> None:
        with self._lock(name):
            self._require_local_scheduler(name)
            state = self.load(name)
            decisions.require_live(state)
            current = state.current_rules
            target = decisions.rollback_target(state, to)
            if current is not None and target.content == current.content:
                self.out.step(f"{name} already runs the rules of r{target.number} (r{current.number}): nothing to do")
                return
            self.out.header(f"Rules diff r{current.number if current else 0} -> r{target.number}")
            for line in rules_diff(current.content if current else "", target.content, f"r{current.number if current else 0}", f"r{target.number}"):
                self.out.raw(line)
            self._set_rules_locked(
                state, target.content, dry_run=True, rolled_back_to=target.number, summary_only=False
            )
            restarts = "1 restart" if state.link else "no restart (not linked)"
            self.out.step(f"Plan: rules r{current.number if current else 0} -> r{target.number}, {restarts}, backend unchanged")
            if dry_run:
                return
            if not force and not confirm(f"Roll {name} back to the rules of r{target.number}?"):
                raise DomainError("Not confirmed: nothing changed (use --force to skip the question)")
            self._set_rules_locked(state, target.content, dry_run=False, rolled_back_to=target.number)

    def _set_rules_locked(
        self, state: InstanceState, content: str, dry_run: bool, rolled_back_to: Optional[int] = None,
        summary_only: bool = True,
    ) -> None:
        name = state.name
        new_events = decisions.decide_set_rules(state, content, rolled_back_to)
        container = self.docker.web_container(name) if state.link else None
        running = container is not None and container.running
        if not new_events and not state.managed_config and not dry_run:
            self.out.step("Rules unchanged; publishing the plugin-rendered config for the first time (adopted instance)")
            state = self._record(state, [ev.NewEvent(ev.CONFIG_PUBLISHED, {"cause": "first managed publish after adoption"})])
            self._publish_or_restore(state, self._backend_secrets(state), state.version)
            return
        if not new_events:
            revision = state.current_rules
            self.out.step(f"Rules unchanged (r{revision.number}, {revision.digest[:12]}): nothing to publish")
            if state.link:
                self._require_ready(name, state)
            return
        backend_secrets: Optional[BackendSecrets] = None
        if not running:
            self._check_rules_offline(state, content, dry_run)  # no instance to ask (finding 7)
        if running:
            # The instance validates (a `docker exec` and the service's parse) while the backend's
            # secrets are read from Dokku; only reads happen before the verdict, so a refusal
            # still changes nothing. The Docker SDK is loaded first, here: importing one package
            # from two threads at once can hand either a half-initialised module.
            self.docker.client  # noqa: B018
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending = pool.submit(PowerSyncApi(self.docker, container.id, state.api_token).validate_rules, content)
                try:
                    backend_secrets = None if dry_run else self._backend_secrets(state)
                    secrets_problem = None
                except DomainError as exc:
                    secrets_problem = exc
                validation = pending.result()
            if validation.reachable and not validation.valid:
                reasons = "\n".join(f"  - {error}" for error in validation.errors)
                raise DomainError(f"The instance rejected these rules (nothing changed):\n{reasons}")
            if not validation.reachable:
                self.out.warn(f"Could not validate on the running instance ({validation.errors[0]}); readiness will decide")
            if secrets_problem is not None:
                raise secrets_problem
        if dry_run:
            if summary_only:
                self.out.step(new_events[0].payload["description"])
            if state.link:
                after = _apply_preview(state, new_events)
                self._print_plan(self._publish_plan(after, self._observe(name), self._derived_tag_preview(after)))
            else:
                self.out.step("Not linked: the rules would be stored and published at link")
            return
        state = self._record(state, new_events)
        revision = state.current_rules
        self.out.step(f"Rules r{revision.number} recorded ({revision.digest[:12]}): {revision.description}")
        if not state.link:
            self.out.step(f"{name} is not linked yet: the rules are published by `dokku powersync:link {name} <backend>`")
            return
        self._publish_or_restore(state, backend_secrets or self._backend_secrets(state), state.version)

    # --- link ----------------------------------------------------------------------------
    def link(
        self, name: str, backend: str, no_restart: bool, kid: Optional[str], audience: tuple[str, ...],
        configure_source: bool, dry_run: bool,
    ) -> None:
        check_app_name(name)
        check_existing_app_name(backend)
        with self._lock(name):
            state = self._load_reconciled(name, dry_run)
            decisions.require_linkable(state, backend)
            self._require_backend_free(name, backend)
            preload = Preload()  # only Dokku is called until preload.wait()
            if not self.dokku.app_exists(backend):
                raise DomainError(f"App {backend} does not exist: link an existing backend app")
            backend_env = self.dokku.config(backend)
            secret_key, raw_source = _backend_values(backend, backend_env)
            self.out.redactor.add(secret_key, derive.secret_key_b64(secret_key), raw_source)
            source_uri, source_sslmode = derive.normalise_source_uri(raw_source)
            service = self._linked_service(backend, source_uri)
            if state.storage == "separate-database" and service is None:
                raise DomainError(
                    f"{name} keeps its storage in a separate database on the source server, which the plugin can only "
                    f"create on a dokku-postgres service; {backend}'s DATABASE_URL is not the DSN of one linked to it "
                    f"(`dokku postgres:app-links {backend}`). Recreate the instance "
                    "with --storage same-database or --storage postgresql://..."
                )
            url = self._instance_url(name)
            if url is None:
                raise DomainError(
                    f"{name} has no domain, so there is no POWERSYNC_URL to give {backend}: "
                    f"`dokku domains:set {name} <domain>` first"
                )
            source_actions: list[Action] = []
            if service is not None:
                source_actions = self._check_source(service, configure_source, dry_run)
            else:
                self.out.warn(
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
            preload.wait()
            if state.current_rules is not None and not self._is_running(name):
                # rules recorded before set-rules checked them offline would make the service exit
                self._check_rules_offline(state, state.current_rules.content, dry_run, f"rules r{state.current_rules.number}")
            if dry_run:
                after = _apply_preview(state, new_events)
                actions = list(source_actions)
                if service:
                    actions.append(Action(Kind.LINK_DATABASE, name, detail=f"postgres service {service}"))
                if storage_db:
                    actions.append(Action(Kind.CREATE_STORAGE, service or "", detail=storage_db))
                publish = self._publish_plan(after, self._observe(name), self._derived_tag_preview(after))
                actions.extend(publish.actions)
                if backend_env.get("POWERSYNC_URL") != url:
                    actions.append(Action(Kind.SET_BACKEND_URL, backend, detail=url, restarts=not no_restart))
                self._print_plan(Plan(tuple(actions)))
                return
            self.out.header(f"Linking {name} to {backend}")
            was_running = self._is_running(name)
            state = self._record(state, new_events)
            cause = state.version
            linked_database = False
            try:
                if service is not None:
                    linked_database = self._link_database(service, name, raw_source)
                instance_env = self.dokku.config(name)
                linked_uri = instance_env.get("DATABASE_URL") if service else raw_source
                if not linked_uri:
                    raise DomainError(f"postgres:link did not give {name} a DATABASE_URL")
                source_from_link = derive.normalise_source_uri(linked_uri)[0]
                if storage_db:
                    self._ensure_storage_database(service, storage_db)
                storage_uri = _storage_uri(state, source_from_link, instance_env)
                backend_secrets = BackendSecrets(secret_key, source_from_link, storage_uri)
                self.out.redactor.add(source_from_link, storage_uri or "")
                self._publish(state, backend_secrets)
                self._prove_auth(state, secret_key)
            except DomainError as exc:
                restored = self._compensate(lambda: self._undo_link(name, service, linked_database, was_running))
                self._record(state, [decisions.outcome(cause, False, str(exc).splitlines()[0], restored)])
                raise CommandFailed(
                    f"Linking {name} to {backend} failed: {exc}\n"
                    + _restored_text(restored, f"{name} unlinked and its derived config removed; {backend} untouched")
                ) from None
            if backend_env.get("POWERSYNC_URL") != url:
                self.out.step(f"Setting POWERSYNC_URL={url} on {backend}" + ("" if no_restart else " (restarts it)"))
                self.dokku.config_set(backend, {"POWERSYNC_URL": url}, restart=not no_restart)
            else:
                self.out.step(f"POWERSYNC_URL on {backend} is already {url}: {backend} not restarted")
            self._record(state, [decisions.outcome(cause, True)])
            self.out.step(f"{name} is linked to {backend} and serving {url}")

    # --- unlink --------------------------------------------------------------------------
    def unlink(self, name: str, backend: str, no_restart: bool, keep_slots: bool, dry_run: bool) -> None:
        with self._lock(name):
            state = self._load_reconciled(name, dry_run)
            new_events = decisions.decide_unlink(state, backend, keep_slots)
            service = state.link.postgres_service
            instance_url = state.link.url
            if dry_run:
                self._print_plan(self._unlink_plan(state, backend, no_restart, keep_slots))
                return
            self.out.header(f"Unlinking {name} from {backend}")
            state = self._record(state, new_events)
            cause = state.version
            try:
                self._apply_unlink(name, backend, service, state, no_restart, keep_slots, instance_url)
            except DomainError as exc:
                self._record(state, [decisions.outcome(cause, False, str(exc).splitlines()[0])])
                raise CommandFailed(
                    f"Unlinking {name} failed part-way: {exc}\nRun `dokku powersync:reconcile {name}` to finish it"
                ) from None
            self._record(state, [decisions.outcome(cause, True)])
            self.out.step(f"{name} unlinked from {backend}")

    def _unlink_plan(self, state: InstanceState, backend: str, no_restart: bool, keep_slots: bool) -> Plan:
        """What _apply_unlink would do (it re-checks each step itself, so a real run skips this)."""
        name, service = state.name, state.link.postgres_service
        actions = []
        if (
            self.dokku.app_exists(backend) and "POWERSYNC_URL" in self.dokku.config_keys(backend)
            and self._backend_points_here(backend, state.link.url)
        ):
            actions.append(Action(Kind.UNSET_BACKEND_URL, backend, restarts=not no_restart))
        actions.append(Action(Kind.STOP, name))
        if not keep_slots:
            actions.append(Action(Kind.TEARDOWN, name, detail=f"slots {state.slot_prefix}* and storage tables"))
        if service:
            actions.append(Action(Kind.UNLINK_DATABASE, name, detail=f"postgres service {service}"))
        actions.append(Action(Kind.UNSET_CONFIG, name, keys=DERIVED_KEYS))
        return Plan(tuple(actions))

    def _backend_points_here(self, backend: str, instance_url: Optional[str]) -> bool:
        """Whether the backend's POWERSYNC_URL is still this instance's (an operator may have
        pointed it elsewhere since; unknown when the link recorded no URL)."""
        return instance_url is None or self.dokku.config(backend).get("POWERSYNC_URL") == instance_url

    def _apply_unlink(
        self, name: str, backend: str, service: Optional[str], state: InstanceState, no_restart: bool, keep_slots: bool,
        instance_url: Optional[str],
    ) -> None:
        """Every step checks before it acts, so an interrupted unlink can simply run again."""
        if self.dokku.app_exists(backend) and "POWERSYNC_URL" in self.dokku.config_keys(backend):
            if self._backend_points_here(backend, instance_url):
                self.out.step(f"Removing POWERSYNC_URL from {backend}" + ("" if no_restart else " (restarts it)"))
                self.dokku.config_unset(backend, ["POWERSYNC_URL"], restart=not no_restart)
            else:
                self.out.warn(f"POWERSYNC_URL on {backend} no longer points at {name} ({instance_url}): left as it is")
        proven = self._slots_in_use(state)
        if self._is_running(name):
            self.out.step(f"Stopping {name}")
            self.dokku.stop(name)
        if keep_slots:
            self.out.warn(
                f"--keep-slots: the replication slots {state.slot_prefix}* stay on the source and retain WAL "
                "until dropped; destroy the instance or drop them before lowering wal_level"
            )
        elif "PS_DATA_SOURCE_URI" in self.dokku.config_keys(name):
            self._teardown(name, state, service, proven)
        elif service:
            self._require_dropped(self._drop_slots(state, service, proven))
        if service and name in self.dokku.postgres_links(service):
            self.dokku.postgres_unlink(service, name)
        keys = [k for k in DERIVED_KEYS + ("DATABASE_URL",) if k in self.dokku.config_keys(name)]
        self.dokku.config_unset(name, keys, restart=False)

    # --- destroy -------------------------------------------------------------------------
    def destroy(self, name: str, force: bool, confirm: Callable[[str], bool], dry_run: bool) -> None:
        with self._lock(name):
            state = self._load_reconciled(name, dry_run)
            new_events = decisions.decide_destroy(state)
            service = state.last_postgres_service
            actions = []
            if service:
                actions.append(Action(Kind.DROP_SLOTS, service, detail=f"{state.slot_prefix}* (any left)"))
            if state.storage_database and service:
                actions.append(Action(Kind.DROP_STORAGE, service, detail=state.storage_database))
            actions.append(Action(Kind.DESTROY_APP, name))
            if dry_run:
                self._print_plan(Plan(tuple(actions)))
                return
            if not force and not confirm(name):
                raise DomainError(f"Confirmation did not match {name}: nothing destroyed (use --force to skip the prompt)")
            self.out.header(f"Destroying PowerSync instance {name}")
            state = self._record(state, new_events)
            cause = state.version
            try:
                self._apply_destroy(state)
            except DomainError as exc:
                self._record(state, [decisions.outcome(cause, False, str(exc).splitlines()[0])])
                raise CommandFailed(f"Destroying {name} failed part-way: {exc}\nRun the same command again to finish it") from None
            self._record(state, [decisions.outcome(cause, True)])
            self.out.step(f"{name} destroyed; `dokku powersync:history {name}` still shows its past")

    def _apply_destroy(self, state: InstanceState) -> None:
        """Idempotent, like _apply_unlink: an interrupted destroy is finished by running it again."""
        name = state.name
        service = state.last_postgres_service
        if service and self.dokku.postgres_exists(service):
            self._require_dropped(self._drop_slots(state, service) + self._drop_storage_database(state, service))
        if self.dokku.app_exists(name):
            self.out.step(f"Destroying app {name}")
            self.dokku.apps_destroy(name)
        shutil.rmtree(settings.instance_dir(name), ignore_errors=True)

    # --- adopt ---------------------------------------------------------------------------
    def adopt(self, name: str, backend: Optional[str], dry_run: bool) -> None:
        """Record a hand-made PowerSync app as the first events of a stream. Writes nothing to
        the app and restarts nothing: the running container keeps serving as it is."""
        check_existing_app_name(name, "app name")
        with self._lock(name):
            self._require_local_scheduler(name)
            state = self.load(name)
            if state.live:
                raise DomainError(f"{name} is already managed by dokku-powersync (`dokku powersync:info {name}`)")
            if not self.dokku.app_exists(name):
                raise DomainError(f"App {name} does not exist: nothing to adopt")
            env = self.dokku.config(name)
            self.out.redactor.add(*env.values())
            container = self.docker.web_container(name)
            if container is None or not container.running:
                raise DomainError(f"{name} has no running web container: adopt takes over a running deployment")
            config_text = self._running_config(name, env, container.id)
            rules_path = self._rules_file_path(env, config_text)
            rules_file = self.docker.read_file(container.id, rules_path) if rules_path else None
            if rules_path and rules_file is None:
                raise DomainError(f"{name}'s rules file {rules_path} (sync_config.path) cannot be read in its container")
            parsed = adoption.parse_config(config_text, rules_file)
            probe = self.docker.http(container.id, "GET", "/probes/readiness", port=adoption.port_of(config_text))
            if not (probe.ok and isinstance(probe.json(), dict) and "ready" in probe.json()):
                raise DomainError(f"{name} does not answer PowerSync's /probes/readiness: is it running PowerSync?")
            source_image = self.dokku.source_image(name)
            image, image_version, digest = self._adopted_image(source_image)
            raw_source = env.get("PS_DATA_SOURCE_URI")
            source_uri = derive.normalise_source_uri(raw_source)[0] if raw_source else ""
            # the instance itself is linked to its source's dokku-postgres service, if it has one
            service = self._linked_service(name, source_uri) if source_uri else None
            backend = backend or self._find_backend(name, service)
            check_existing_app_name(backend)
            if not self.dokku.app_exists(backend):
                raise DomainError(f"Backend app {backend} does not exist")
            backend_env = self.dokku.config(backend)
            secret_key, _ = _backend_values(backend, backend_env)
            self.out.redactor.add(secret_key)
            if derive.secret_key_b64(secret_key) != env.get("PS_SECRET_KEY_B64"):
                raise DomainError(
                    f"Inconsistent: {backend}'s SECRET_KEY does not derive {name}'s PS_SECRET_KEY_B64 "
                    "(base64url, no padding): fix the deployment or name the right --backend"
                )
            if not source_uri:
                raise DomainError(f"Inconsistent: {name} has no PS_DATA_SOURCE_URI")
            if service is not None:
                linked = env.get("DATABASE_URL")
                if not linked or derive.normalise_source_uri(linked)[0] != source_uri:
                    raise DomainError(f"Inconsistent: PS_DATA_SOURCE_URI of {name} does not match the DATABASE_URL of its link")
            memory_mb = container.memory_bytes // (1024 * 1024) or 400
            # The config mount of the older layout (Jeeves kept it at /config, inert once the config
            # moved to POWERSYNC_CONFIG_B64); other mounts are the operator's and stay.
            config_dirs = {"/config", env.get("POWERSYNC_CONFIG_PATH", "").rsplit("/", 1)[0]} - {""}
            mounts = tuple(m for m in self.dokku.storage_mounts(name) if m.rsplit(":", 1)[-1] in config_dirs)
            cleanup = tuple(adoption.leftover_keys(env, parsed.referenced_env))
            token = secrets_module.token_urlsafe(32)
            payload = {
                "adopted_from": name, "image": image, "image_version": image_version, "digest": digest,
                "memory_mb": memory_mb, "storage": parsed.storage, "api_token": token, "slot_prefix": parsed.slot_prefix,
                "rules": parsed.rules, "rules_digest": derive.rules_digest(parsed.rules),
                "backend": backend, "postgres_service": service, "source_fingerprint": derive.fingerprint(source_uri),
                "secret_fingerprint": derive.fingerprint(secret_key), "audience": list(parsed.audience), "kid": parsed.kid,
                "url": backend_env.get("POWERSYNC_URL"), "source_sslmode": parsed.source_sslmode,
                "storage_sslmode": parsed.storage_sslmode, "extras": config_render.to_json_safe(parsed.extras),
                "cleanup_keys": list(cleanup), "cleanup_mounts": list(mounts),
            }
            self.out.header(f"Adopting {name} (linked to {backend})")
            self.out.detail(f"Image: {image}:{image_version} ({digest[:19]})")
            self.out.detail(f"Rules: {len(parsed.rules.encode())} bytes, kept byte for byte as r1")
            self.out.detail(f"Auth: audience {', '.join(parsed.audience)}, kid {parsed.kid or 'none'}; storage {parsed.storage}")
            if parsed.other_key_ids:
                self.out.detail(
                    f"Other JWKS keys kept as they are: {', '.join(parsed.other_key_ids)} "
                    f"(their variables {', '.join(sorted(parsed.referenced_env))} too)"
                )
            self.out.detail(f"Slots: prefix {parsed.slot_prefix} kept, so replication continues on the same slot")
            self.out.step("The first managed change (set-rules, rotate, upgrade, reconcile) will, in one restart:")
            self.out.detail(f"deploy the derived image of {image}:{image_version} (readiness-gated restarts)")
            self.out.detail("publish the plugin-rendered config as POWERSYNC_CONFIG_B64 (same rules bytes)")
            if rules_path:
                self.out.detail(f"carry the rules inline instead of in {rules_path} (the file is no longer read)")
            self.out.detail("add PS_API_TOKEN and api.tokens (the admin API the plugin uses)")
            for key in cleanup:
                self.out.detail(f"remove {key}")
            for mount in mounts:
                self.out.detail(f"unmount the inert storage mount {mount}")
            if dry_run:
                self.out.step("Dry run: nothing recorded")
                return
            state = self._record(state, [ev.NewEvent(ev.INSTANCE_ADOPTED, payload)])
            self._record(state, [decisions.outcome(state.version, True)])
            self.out.step(f"{name} adopted: nothing was written to it and nothing restarted")

    @staticmethod
    def _rules_file_path(env: dict[str, str], config_text: str) -> Optional[str]:
        """The rules file behind sync_config.path, as an absolute path in the container: relative
        to the config file, or (config from POWERSYNC_CONFIG_B64) to the working directory, which
        is also where `docker exec` starts."""
        path = adoption.rules_path(config_text)
        if path is None or path.startswith("/") or env.get("POWERSYNC_CONFIG_B64"):
            return path
        config_dir = env.get("POWERSYNC_CONFIG_PATH", "").rsplit("/", 1)[0]
        return f"{config_dir}/{path}" if config_dir else path

    def _running_config(self, name: str, env: dict[str, str], container_id: str) -> str:
        if env.get("POWERSYNC_CONFIG_B64"):
            try:
                return base64.b64decode(env["POWERSYNC_CONFIG_B64"]).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise DomainError(f"POWERSYNC_CONFIG_B64 of {name} is not base64 of a UTF-8 config") from None
        path = env.get("POWERSYNC_CONFIG_PATH")
        if path:
            text = self.docker.read_file(container_id, path)
            if text is None:
                raise DomainError(f"{name}'s POWERSYNC_CONFIG_PATH {path} cannot be read in its container")
            return text
        raise DomainError(f"{name} is not running PowerSync from config vars (no POWERSYNC_CONFIG_B64 or POWERSYNC_CONFIG_PATH)")

    def _adopted_image(self, source_image: str) -> tuple[str, str, str]:
        reference, _, pinned_digest = source_image.partition("@")
        repository, _, version = reference.rpartition(":")
        if not repository or not decisions.is_exact_version(version):
            raise DomainError(
                f"The deployed image {source_image or '(unknown)'} is not pinned to an exact X.Y.Z version: "
                "redeploy a pinned image first"
            )
        found = self.docker.image(reference)
        digest = pinned_digest or (found.digest if found else "unknown")
        return repository, version, digest

    def _linked_service(self, app: str, uri: str) -> Optional[str]:
        """The dokku-postgres service linked to `app` whose DSN reaches the database `uri` does, or
        None (a database dokku-postgres does not serve to `app`). Asked of dokku-postgres, never read
        off the host name: `acce_u` is reached at `dokku-postgres-acce-u`."""
        for service in self.dokku.postgres_app_links(app):
            dsn = self.dokku.postgres_dsn(service)
            self.out.redactor.add(dsn)
            if derive.same_database(dsn, uri):
                return service
        return None

    def _find_backend(self, name: str, service: Optional[str]) -> str:
        candidates = [app for app in (self.dokku.postgres_links(service) if service else []) if app != name]
        with_secret = [app for app in candidates if "SECRET_KEY" in self.dokku.config_keys(app)]
        if len(with_secret) == 1:
            return with_secret[0]
        raise DomainError(
            f"Cannot tell which app is {name}'s backend ({', '.join(with_secret) or 'none found'}): pass --backend <app>"
        )

    # --- settings, rotation, upgrade ----------------------------------------------------
    def default_image_version(self) -> str:
        found = self.journal.latest_payload(settings.GLOBAL_STREAM, ev.SETTING_CHANGED, "image-version")
        return settings.default_image_version(found["value"] if found else None)

    def set_global(self, key: str, value: str) -> None:
        if key != "image-version":
            raise DomainError(f"Unknown global setting {key!r}: the only one is image-version")
        if not decisions.is_exact_version(value):
            raise DomainError(f"Invalid image-version {value!r}: use an exact X.Y.Z release")
        with self._lock(settings.GLOBAL_STREAM):
            head = self.journal.head(settings.GLOBAL_STREAM)
            self.journal.append(
                settings.GLOBAL_STREAM, head, [ev.NewEvent(ev.SETTING_CHANGED, {"key": key, "value": value})],
                self.actor, self.command,
            )
        self.out.step(f"New instances now default to image version {value} (existing ones: `powersync:upgrade`)")

    def set_setting(self, name: str, key: str, value: str) -> None:
        with self._lock(name):
            state = self.load(name)
            new_events = decisions.decide_setting(state, key, value)
            if not new_events:
                self.out.step(f"{key} is already {value} on {name}")
                return
            state = self._record(state, new_events)
            self._record(state, [decisions.outcome(state.version, True)])
            self.out.step(f"Set {key}={value} on {name}")

    def rotate(self, name: str, cause: str, from_hook: bool = False) -> None:
        """Re-derive the instance from its backend's current SECRET_KEY and DATABASE_URL."""
        with self._lock(name):
            self._require_local_scheduler(name)
            state = self.load(name)
            decisions.require_live(state)
            if state.link is None:
                raise DomainError(f"{name} is not linked: nothing to rotate")
            backend = state.link.backend
            env = self.dokku.config(backend)
            missing = [key for key in ("SECRET_KEY", "DATABASE_URL") if not env.get(key)]
            if missing:
                message = (
                    f"{backend} no longer has {' or '.join(missing)}: {name} was left as it is and keeps "
                    f"accepting tokens signed with the previous secret. Restore it on {backend}, then run "
                    f"`dokku powersync:rotate {name}`"
                )
                self._record(state, [ev.NewEvent(ev.BACKEND_CHANGED, {"cause": f"{' and '.join(missing)} removed from {backend}"})])
                raise DomainError(message)
            secret_key = env["SECRET_KEY"]
            self.out.redactor.add(secret_key, derive.secret_key_b64(secret_key), env["DATABASE_URL"])
            source_uri, _ = derive.normalise_source_uri(env["DATABASE_URL"])
            service = self._linked_service(backend, source_uri)
            if service != state.link.postgres_service:
                raise DomainError(
                    f"{backend}'s DATABASE_URL now points at another database server: relink "
                    f"(`dokku powersync:unlink {name} {backend}` then `link`) so slots and storage move with it"
                )
            if from_hook and not state.auto_rotate:
                self._record(state, [ev.NewEvent(ev.BACKEND_CHANGED, {"cause": cause})])
                self.out.warn(f"{name} is now stale ({cause}); auto-rotate is off: run `dokku powersync:rotate {name}`")
                return
            new_events = decisions.decide_rotation(state, derive.fingerprint(secret_key), derive.fingerprint(source_uri), cause)
            if not new_events:
                self.out.step(f"{name} already uses {backend}'s current secret and source")
                return
            self.out.header(f"Rotating {name}: {cause}")
            state = self._record(state, new_events)
            storage_uri = _storage_uri(state, source_uri, self.dokku.config(name))
            self._publish_or_restore(state, BackendSecrets(secret_key, source_uri, storage_uri), state.version)

    def upgrade(self, name: str, image: Optional[str], image_version: Optional[str], force: bool, dry_run: bool) -> None:
        with self._lock(name):
            self._require_local_scheduler(name)
            state = self.load(name)
            decisions.require_live(state)
            target_image = image or state.image
            target_version = image_version or self.default_image_version()
            reference = f"{target_image}:{target_version}"
            found = self.docker.image(reference)
            if found is None and not dry_run:
                self.out.step(f"Pulling {reference}")
                found = self.docker.pull(reference)
            digest = found.digest if found else "unknown"
            if image is None and state.image != settings.DEFAULT_IMAGE:
                self.out.step(f"Keeping the custom image {state.image} (pass --image to change it)")
            new_events = decisions.decide_upgrade(state, target_image, target_version, digest, force, image is not None)
            if not new_events:
                self.out.step(f"{name} already runs {state.image}:{state.image_version}: nothing to upgrade")
                return
            after = _apply_preview(state, new_events)
            if dry_run:
                self.out.step(f"Upgrade {state.image}:{state.image_version} -> {after.image}:{after.image_version}")
                if state.link:
                    self._print_plan(self._publish_plan(after, self._observe(name), self._derived_tag_preview(after)))
                return
            state = self._record(state, new_events)
            self.out.header(f"Upgrading {name} to {state.image}:{state.image_version} ({digest[:19]})")
            if not state.link:
                self._record(state, [decisions.outcome(state.version, True)])
                self.out.step(f"{name} is not linked: the new version is deployed at link")
                return
            self._publish_or_restore(state, self._backend_secrets(state), state.version)

    def reconcile(self, name: str, dry_run: bool) -> None:
        """Converge the app on the journal: after a crash mid-command, or drift made by hand."""
        with self._lock(name):
            self._require_local_scheduler(name)
            self._reconcile_locked(self.load(name), dry_run)
            # a domain or certificate change the triggers missed (plugin disabled, files by hand)
            self._follow_url(name, "powersync:reconcile", "its domain or certificate changed", dry_run)

    def _require_local_scheduler(self, name: str) -> None:
        """The plugin observes and stops instances through the local Docker engine: an instance app
        moved to another scheduler (scheduler-k3s) would be half-handled, so it is refused."""
        scheduler = self.dokku.scheduler(name)
        if scheduler not in (None, "docker-local"):
            raise DomainError(
                f"{name} runs on the {scheduler} scheduler; dokku-powersync manages instances on docker-local only "
                f"(it reads their containers from the local Docker engine). Nothing changed. Move it back with "
                f"`dokku scheduler:set {name} selected docker-local` and `dokku ps:rebuild {name}`"
            )

    def _load_reconciled(self, name: str, dry_run: bool = False) -> InstanceState:
        """The instance's state, after finishing a change an earlier command left without outcome."""
        self._require_local_scheduler(name)
        state = self.load(name)
        if state.pending_intent is None:
            return state
        if dry_run:
            self.out.warn(f"Revision {state.pending_intent} was interrupted: the real run reconciles it first")
            return state
        self.out.step(f"Revision {state.pending_intent} was interrupted: reconciling before this command")
        self._reconcile_locked(state, dry_run=False)
        return self.load(name)

    def _reconcile_locked(self, state: InstanceState, dry_run: bool) -> None:
        name = state.name
        last_version, last_type = state.intents[-1] if state.intents else (0, "")
        interrupted = last_version and last_version not in state.outcomes
        if interrupted:
            self._remove_interrupted_deploy_containers(name, dry_run)
        if interrupted and last_type in (ev.BACKEND_UNLINKED, ev.INSTANCE_DESTROYED):
            self._finish_interrupted(state, last_version, last_type, dry_run)
            return
        decisions.require_live(state)
        pending = state.pending_intent
        if state.link is None:
            if pending is not None and not dry_run:
                self._record(state, [decisions.outcome(pending, False, "interrupted before it was applied; nothing deployed")])
            self.out.step(f"{name} is not linked: nothing deployed to converge")
            return
        backend_secrets = self._backend_secrets(state)
        if dry_run:  # compare against the tag a real run would build; a dry run pulls and builds nothing
            tag = self._derived_tag_preview(state)
        else:
            reference, base = self._base_image(state)
            tag = self.docker.build_derived(base, reference, state.image_version)
        plan = self._publish_plan(state, self._observe(name), tag, self._desired_env(state, backend_secrets))
        if dry_run or (not plan.actions and pending is None):
            if plan.actions:
                self._print_plan(plan)
            else:
                self.out.step(f"{name} matches its journal (revision {state.version})")
            return
        if pending is not None:
            self.out.step(f"Revision {pending} has no recorded outcome (interrupted): applying it now")
        else:
            self.out.step(f"{name} drifted from its journal: converging")
            state = self._record(state, [ev.NewEvent(ev.CONFIG_PUBLISHED, {"cause": "reconcile: drift repaired"})])
            pending = state.version
        self._publish_or_restore(state, backend_secrets, pending)

    def _remove_interrupted_deploy_containers(self, name: str, dry_run: bool) -> None:
        """A command killed during Dokku's deploy leaves the new container behind; it would keep
        restarting and contend for the replication lock with whatever converges next."""
        for container in self.docker.interrupted_deploy_containers(name):
            if dry_run:
                self.out.step(f"Would remove {container}, left by the interrupted deploy")
            else:
                self.docker.remove_container(container)
                self.out.step(f"Removed {container}, left by the interrupted deploy")

    def _finish_interrupted(self, state: InstanceState, version: int, type_: str, dry_run: bool) -> None:
        name = state.name
        events = self.journal.load(name)
        event = next(e for e in events if e.version == version)
        link_before = project(name, events, until=version - 1).link
        self.out.step(f"Revision {version} ({type_}) has no recorded outcome (interrupted): finishing it")
        if dry_run:
            return
        try:
            if type_ == ev.BACKEND_UNLINKED:
                self._apply_unlink(
                    name, event.payload["backend"], state.last_postgres_service, state, True,
                    bool(event.payload.get("slots_kept")), link_before.url if link_before else None,
                )
            else:
                self._apply_destroy(state)
        except DomainError as exc:
            self._record(state, [decisions.outcome(version, False, str(exc).splitlines()[0])])
            raise
        self._record(state, [decisions.outcome(version, True)])
        self.out.step(f"Revision {version} completed")

    # --- thin Dokku-native commands --------------------------------------------------------
    def lifecycle(self, name: str, action: str) -> int:
        state = self.load(name)
        decisions.require_live(state)
        if state.link is None and action != "stop":
            raise DomainError(f"{name} is not deployed yet: `dokku powersync:link {name} <backend>` deploys it")
        return self.dokku.passthrough(f"ps:{action}", name)

    def token(self, name: str, subject: str, ttl: int, claims: dict[str, str]) -> str:
        state = self.load(name)
        decisions.require_live(state)
        if state.link is None:
            raise DomainError(f"{name} is not linked: a token is signed with the backend's SECRET_KEY")
        secret_key, _ = _backend_values(state.link.backend, self.dokku.config(state.link.backend))
        now = int(time.time())
        payload = {**claims, "sub": subject, "aud": state.audience[0], "iat": now, "exp": now + ttl}
        return derive.sign_hs256(secret_key.encode("utf-8"), payload, state.kid)

    def status(self, name: str) -> dict:
        self._require_local_scheduler(name)
        state = self.load(name)
        decisions.require_live(state)
        container = self.docker.web_container(name)
        result: dict = {"name": name, "running": bool(container and container.running)}
        result["image"] = container.image if container else "-"
        base = self.docker.image(f"{state.image}:{state.image_version}")
        result["image-digest"] = base.digest if base else "-"
        if container and container.running:
            api = PowerSyncApi(self.docker, container.id, state.api_token)
            result["ready"] = api.readiness().ok
            diagnostics = api.diagnostics()
            result.update(summarize_diagnostics(diagnostics) if diagnostics else {"diagnostics": "unavailable (admin API)"})
        else:
            result["ready"] = False
        if state.link:
            desired = config_render.render(config_render.desired_config(state))
            deployed = self.dokku.config(name).get("POWERSYNC_CONFIG_B64", "")
            result["config-drift"] = base64.b64encode(desired.encode()).decode() != deployed
            if state.link.postgres_service:
                slots = self.source_db.instance_slots(state.link.postgres_service, state.slot_prefix)
                result["slots"] = [{"slot": slot.name, "active": slot.active, "retained_wal": slot.retained_wal} for slot in slots]
        result["stale"] = state.stale_cause or "-"
        return result

    # --- publishing ----------------------------------------------------------------------
    def _desired_env(self, state: InstanceState, backend_secrets: BackendSecrets) -> dict[str, str]:
        rendered = config_render.render(config_render.desired_config(state))
        env = {
            "POWERSYNC_CONFIG_B64": base64.b64encode(rendered.encode()).decode(),
            "PS_SECRET_KEY_B64": derive.secret_key_b64(backend_secrets.secret_key),
            "PS_DATA_SOURCE_URI": backend_secrets.source_uri,
            "PS_API_TOKEN": state.api_token,
            "NODE_OPTIONS": f"--max-old-space-size={decisions.node_heap_megabytes(state.memory_mb)}",
        }
        if backend_secrets.storage_uri:
            env["PS_STORAGE_SOURCE_URI"] = backend_secrets.storage_uri
        return env

    def _observe(self, name: str) -> Observed:
        container = self.docker.web_container(name)
        return Observed(
            env=self.dokku.config(name),
            ports=tuple(self.dokku.ports_map(name)),
            tls=self.dokku.tls_enabled(name),
            deployed_image=container.image if container else None,
            running=bool(container and container.running),
        )

    def _publish_plan(self, state: InstanceState, observed: Observed, image: str, env: Optional[dict] = None) -> Plan:
        if env is None:  # a dry run: compare only what can be known without reading secrets
            env = {key: observed.env[key] for key in DERIVED_KEYS if key in observed.env}
            rendered = config_render.render(config_render.desired_config(state))
            env["POWERSYNC_CONFIG_B64"] = base64.b64encode(rendered.encode()).decode()
        return plan_publish(state.name, env, image, observed, state.cleanup_keys, state.cleanup_mounts)

    def _base_image(self, state: InstanceState) -> tuple[str, ImageView]:
        reference = f"{state.image}:{state.image_version}"
        image = self.docker.image(reference)
        if image is None:
            self.out.step(f"Pulling {reference}")
            image = self.docker.pull(reference)
        return reference, image

    def _check_rules_offline(self, state: InstanceState, content: str, dry_run: bool, stored: str = "") -> None:
        """Refuse rules the instance's image would reject, when no running instance can say so:
        its own parser runs in a one-off container. New rules are never recorded unchecked: if
        the check cannot run, set-rules is refused. A dry run starts no container, so it only
        says so. `stored` names a recorded revision about to be deployed (link): if that check
        cannot run, a warning, and the deploy's readiness and stay-up checks decide as before."""
        reference = f"{state.image}:{state.image_version}"
        if dry_run:
            self.out.step(f"Not checked by the rules parser in {reference}: a real run checks them first (a dry run starts no container)")
            return
        if self.docker.image(reference) is None:
            try:
                self._base_image(state)
            except DomainError as exc:
                if stored:
                    raise
                raise DomainError(f"{exc}\nThe rules are checked by the parser in that image before they are recorded: nothing changed") from None
        verdict = self.docker.check_rules(reference, content, state.name)
        if verdict.problem and stored:
            self.out.warn(f"Could not check the {stored} with the parser in {reference} ({verdict.problem}); readiness will decide")
        elif verdict.problem:
            raise DomainError(
                f"Cannot check these rules with the parser in {reference}: {verdict.problem} (nothing changed)\n"
                f"A running instance checks rules through its own API: link {state.name} (or start it) first, then set the rules"
            )
        elif verdict.errors:
            reasons = "\n".join(f"  - {error}" for error in verdict.errors)
            if stored:
                raise DomainError(
                    f"The rules parser of {reference} rejects the current {stored} of {state.name}, which link would deploy "
                    f"(nothing changed):\n{reasons}\nSet valid rules first: dokku powersync:set-rules {state.name} < sync-rules.yaml"
                )
            raise DomainError(f"The rules parser of {reference} rejected these rules (nothing changed):\n{reasons}")

    def _derived_tag_preview(self, state: InstanceState) -> str:
        reference = f"{state.image}:{state.image_version}"
        image = self.docker.image(reference)
        return f"(derived from {reference})" if image is None else derived_tag(image, state.image_version)

    def _publish(self, state: InstanceState, backend_secrets: BackendSecrets) -> None:
        """Apply the desired config with at most one restart, gated on readiness."""
        name = state.name
        reference, base = self._base_image(state)
        tag = self.docker.build_derived(base, reference, state.image_version)
        env = self._desired_env(state, backend_secrets)
        self.out.redactor.add(*env.values())
        observed = self._observe(name)
        plan = self._publish_plan(state, observed, tag, env)
        for action in plan.actions:
            self._execute(action, env, tag)
        if plan.restarts:
            self._verify_deployed(state)
        else:
            self.out.step("Config unchanged: no restart")
            self._require_ready(name, state)

    def _execute(self, action: Action, env: dict[str, str], tag: str) -> None:
        app = action.app
        if action.kind is Kind.REMOVE_PORTS:
            self.out.step(f"Removing port mapping {action.detail} (http:80 must reach PowerSync's 8080)")
            self.dokku.ports_remove(app, *action.detail.split())
        elif action.kind is Kind.ADD_PORTS:
            self.out.step(f"Adding port mapping {action.detail} to {app} (other mappings kept)")
            self.dokku.ports_add(app, *action.detail.split())
        elif action.kind is Kind.UNSET_CONFIG:
            self.out.step(f"Removing {', '.join(action.keys)} (overrides of the published rules, or leftovers)")
            self.dokku.config_unset(app, action.keys, restart=False)
        elif action.kind is Kind.UNMOUNT:
            self.out.step(f"Unmounting the inert storage mount {action.detail}")
            self.dokku.storage_unmount(app, action.detail)
        elif action.kind is Kind.SET_CONFIG:
            values = {key: env[key] for key in action.keys}
            if action.restarts:
                self.out.step(f"Publishing {', '.join(action.keys)} and restarting {app} (waiting for readiness)")
            self.dokku.config_set(app, values, restart=action.restarts)
        elif action.kind is Kind.DEPLOY_IMAGE:
            self.out.step(f"Deploying {tag} to {app} (waiting for readiness)")
            if not self.dokku.deploy_image(app, tag):
                self.out.step("Image unchanged: restarting to apply the config")
                self.dokku.restart(app)
        elif action.kind is Kind.RESTART:
            self.out.step(f"Restarting {app} (waiting for readiness)")
            self.dokku.restart(app)
        else:  # pragma: no cover - plan_publish emits only the kinds above
            raise AssertionError(action.kind)

    def _verify_deployed(self, state: InstanceState) -> None:
        """Readiness must answer 2xx and the new container must stay up: a process with invalid
        rules turns ready briefly, then exits."""
        name = state.name
        container = self.docker.web_container(name)
        if container is None or not container.running:
            raise DomainError(f"{name} has no running container after the deploy")
        self._require_ready(name, state, container_id=container.id)
        window = settings.seconds("POWERSYNC_STAY_UP_SECONDS", 6)
        self.out.step(f"Ready; checking the new container stays up ({window:g}s)")
        started = time.monotonic()
        stayed_up = self.docker.wait_stays_up(container.id, window)
        self.waited += time.monotonic() - started
        if stayed_up is None:
            logs = self.out.redactor.text(self.docker.logs_tail(container.id, 8))
            raise DomainError(f"The new container of {name} exited after turning ready:\n{logs}")
        self._require_ready(name, state, container_id=container.id, wait=0)

    def _require_ready(self, name: str, state: InstanceState, container_id: Optional[str] = None, wait: Optional[float] = None) -> None:
        if container_id is None:
            container = self.docker.web_container(name)
            if container is None or not container.running:
                raise DomainError(f"{name} is not running: `dokku ps:report {name}`, `dokku logs {name}`")
            container_id = container.id
        api = PowerSyncApi(self.docker, container_id, state.api_token)
        started, service_before = time.monotonic(), self.docker.service_seconds
        deadline = started + (settings.seconds("POWERSYNC_READY_TIMEOUT", 60) if wait is None else wait)
        try:
            while True:
                result = api.readiness()
                if result.ok:
                    return
                if time.monotonic() >= deadline:
                    detail = result.error or f"HTTP {result.status}"
                    raise DomainError(f"{name} is not ready: /probes/readiness answered {detail} (only 2xx counts)")
                time.sleep(0.5)
        finally:
            self.waited += time.monotonic() - started
            self.docker.service_seconds = service_before  # already counted as waiting

    def _publish_or_restore(self, state: InstanceState, backend_secrets: BackendSecrets, cause: int) -> None:
        name = state.name
        previous_env = self.dokku.config(name)
        previous_image = self.dokku.source_image(name)
        try:
            self._publish(state, backend_secrets)
        except DomainError as exc:
            self.out.warn(f"Publishing failed: {str(exc).splitlines()[0]}")
            self.out.step("Restoring the previous config and image")
            restored = self._compensate(lambda: self._restore(state, previous_env, previous_image))
            self._record(state, [decisions.outcome(cause, False, str(exc).splitlines()[0], restored)])
            raise CommandFailed(
                f"Publishing to {name} failed: {exc}\n"
                + _restored_text(restored, "the previous config and image are back and the instance is ready")
            ) from None
        self._record(state, [decisions.outcome(cause, True)])
        self.out.step(f"Published to {name}")

    def _restore(self, state: InstanceState, previous_env: dict[str, str], previous_image: str) -> None:
        """Put back the config and, when the failed publish deployed another image, that image too:
        a restart alone would run the new image with the old config."""
        name = state.name
        current = self.dokku.config(name)
        changed = {key: value for key, value in previous_env.items() if current.get(key) != value}
        added = [key for key in current if key not in previous_env]
        self.dokku.config_unset(name, added, restart=False)
        self.dokku.config_set(name, changed, restart=False)
        if previous_image and self.dokku.source_image(name) != previous_image:
            self.out.step(f"Redeploying the previous image {previous_image} (waiting for readiness)")
            if self.dokku.deploy_image(name, previous_image):
                self._require_ready(name, state)
                return
        container = self.docker.web_container(name)
        healthy = container is not None and container.running and self.docker.container(container.id).restart_count == 0
        if healthy:
            try:
                self._require_ready(name, state, container.id, wait=5)
                return
            except DomainError:
                pass
        self.dokku.restart(name)
        self._require_ready(name, state)

    def _compensate(self, undo: Callable[[], object]) -> bool:
        try:
            undo()
            return True
        except DomainError as exc:
            self.out.warn(f"Could not restore: {exc}")
            return False

    # --- link helpers --------------------------------------------------------------------
    def on_backend_config_change(self, backend: str, action: str, keys: list[str]) -> None:
        """post-config-update on a linked backend: rotate when SECRET_KEY or DATABASE_URL changed."""
        from powersync_plugin import reads

        watched = {"SECRET_KEY", "DATABASE_URL"}
        changed = sorted(watched & set(keys)) if action != "clear" else sorted(watched)
        if not changed:
            return
        for name in reads.instances_linked_to(backend):
            cause = f"{' and '.join(changed)} {'cleared' if action == 'clear' else action} on {backend}"
            try:
                self.rotate(name, cause, from_hook=True)
            except DomainError as exc:
                self.out.warn(str(exc))

    def on_app_destroy(self, app: str) -> None:
        """pre-delete: an instance app destroyed with apps:destroy, or a linked backend going away."""
        from powersync_plugin import reads

        state = self.load(app)
        if state.live:
            try:
                lock = instance_lock(settings.locks_dir(), app, lambda _: None, timeout=0)
                with lock:
                    self._destroyed_by_dokku(self.load(app))
            except Busy:
                pass  # a powersync command holds the instance (create undoing itself): it records the outcome
        for name in reads.instances_linked_to(app):
            self.out.step(f"{app} is being destroyed: unlinking PowerSync instance {name}")
            try:
                self.unlink(name, app, no_restart=True, keep_slots=False, dry_run=False)
            except DomainError as exc:
                self.out.warn(f"Could not unlink {name} from {app}: {exc}")

    def _destroyed_by_dokku(self, state: InstanceState) -> None:
        """Dokku fires pre-delete before it stops the app, and a running PowerSync holds its slot
        active, which Postgres refuses to drop: stop the instance first (as Dokku's scheduler-stop
        is about to), then drop its slots and storage database. Whatever stays is recorded and
        said, with the command that removes it; the trigger itself never fails the destroy."""
        app, service = state.name, state.last_postgres_service
        left: list[Leftover] = []
        if service:
            proven = self._slots_in_use(state)
            stopped = self.docker.stop_app_containers(app)
            if stopped:
                self.out.step(f"Stopped {app} so its replication slots can be dropped")
            try:
                if self.dokku.postgres_exists(service):
                    left = self._drop_slots(state, service, proven) + self._drop_storage_database(state, service)
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
        state = self._record(state, [ev.NewEvent(ev.INSTANCE_DESTROYED, payload)])
        self._record(state, [decisions.outcome(state.version, True)])
        if left:
            self.out.warn(f"{app} was a PowerSync instance: recorded as destroyed, but these are left:")
            for item in left:
                self.out.warn(f"  - {item}")
        elif service:
            self.out.warn(f"{app} was a PowerSync instance: recorded as destroyed; its replication slots and storage were dropped")
        else:
            self.out.warn(f"{app} was a PowerSync instance: recorded as destroyed")

    def on_app_rename_setup(self, old: str, new: str) -> None:
        """post-app-rename-setup: Dokku has created `new` and copied `old`'s config, domains and
        links to it, and is about to destroy `old` (its pre-delete must then find nothing to do).
        An instance keeps its slots, storage and API token, so the rebuild Dokku runs next
        resumes replication where `old` stopped."""
        from powersync_plugin import reads

        state = self.load(old)
        if state.live:
            with self._lock(old), self._lock(new):
                state = self.load(old)
                self.journal.continue_stream(
                    old, state.version, new,
                    ev.NewEvent(ev.INSTANCE_RENAMED, {"to": new}), ev.NewEvent(ev.INSTANCE_RENAMED_FROM, {"from": old}),
                    self.actor, self.command,
                )
                self.out.step(
                    f"PowerSync instance {old} is now {new}: same slots ({state.slot_prefix}*), storage and rules; "
                    f"`dokku powersync:history {new}` continues its history"
                )
        for name in reads.instances_linked_to(old):
            with self._lock(name):
                instance = self.load(name)
                if instance.link is None or instance.link.backend != old:
                    continue
                self._record(instance, [ev.NewEvent(ev.BACKEND_RENAMED, {"from": old, "to": new})])
                self.out.step(f"PowerSync instance {name} is now linked to {new} (was {old})")

    def _instance_url(self, name: str) -> Optional[str]:
        """The URL clients reach the instance at (its first domain), or None without a domain."""
        vhosts = self.dokku.vhosts(name)
        if not vhosts:
            return None
        return ("https://" if self.dokku.tls_enabled(name) else "http://") + vhosts[0]

    def on_app_renamed(self, old: str, new: str) -> None:
        """post-app-rename: a renamed instance whose domain followed the app name (the global
        vhost) serves another URL now; its backend must hand clients the new one."""
        self.on_url_inputs_changed(new, f"apps:rename {old} {new}", f"{old} is now {new}")

    def on_url_inputs_changed(self, name: str, cause: str, why: str) -> None:
        """post-domains-update / post-certs-update / post-certs-remove (and post-app-rename): the
        instance's domain or certificate changed, so maybe its URL; slots and config untouched."""
        state = self.load(name)
        if not state.live or state.link is None or self._instance_url(name) == state.link.url:
            return  # cheap checks first: these triggers fire for every app
        with self._lock(name):
            self._follow_url(name, cause, why)

    def _follow_url(self, name: str, cause: str, why: str, dry_run: bool = False) -> None:
        """Give the backend the instance's current URL if its POWERSYNC_URL is still the one the
        plugin gave it (a hand-set value is left alone), and record the new URL. Caller holds the lock."""
        state = self.load(name)
        if not state.live or state.link is None or not self.dokku.app_exists(state.link.backend):
            return
        url = self._instance_url(name)
        backend = state.link.backend
        if url is None or url == state.link.url:
            return
        points_here = self.dokku.config(backend).get("POWERSYNC_URL") == state.link.url
        if dry_run:
            if points_here:
                self._print_plan(Plan((Action(Kind.SET_BACKEND_URL, backend, detail=url, restarts=True),)))
            return
        if points_here:
            self.out.step(f"Setting POWERSYNC_URL={url} on {backend} (restarts it): {why}")
            self.dokku.config_set(backend, {"POWERSYNC_URL": url}, restart=True)
        else:
            self.out.warn(
                f"{name} now serves {url}, but POWERSYNC_URL on {backend} was set by hand (it is not {state.link.url}): "
                f"left alone; `dokku config:set {backend} POWERSYNC_URL={url}` if clients should follow"
            )
        self._record(state, [ev.NewEvent(ev.URL_CHANGED, {"url": url, "cause": cause})])

    def on_app_clone_setup(self, old: str, new: str) -> None:
        """post-app-clone-setup: Dokku copied `old`'s config to `new`. A copy of an instance's
        deployed config would run a second PowerSync on the same slots and storage with the same
        API token, so `new` becomes a separate instance instead: `old`'s settings and current
        rules, a fresh token, its own slot prefix, nothing deployed until linked."""
        from powersync_plugin import reads

        source = self.load(old)
        if source.live:
            with self._lock(new):
                self._clone_instance(source, new)
        for name in reads.instances_linked_to(old):
            self.out.warn(
                f"{new} is a copy of {old}, which PowerSync instance {name} trusts: {new} keeps POWERSYNC_URL and "
                f"SECRET_KEY but is not linked, so its key changes do not rotate {name}"
            )

    def _clone_instance(self, source: InstanceState, new: str) -> None:
        state = self.load(new)
        storage = source.storage
        if storage == "uri":
            storage = "separate-database"
            self.out.warn(f"{source.name} keeps its storage at its own URI; {new} gets a separate database on its source instead")
        token = secrets_module.token_urlsafe(32)
        new_events = decisions.decide_create(
            state, new, source.image, source.image_version, f"{source.memory_mb}m", storage, token, None,
        )
        new_events[0] = ev.NewEvent(ev.INSTANCE_CREATED, {**new_events[0].payload, "cloned_from": source.name})
        rules = source.current_rules
        if rules is not None:
            copied = decisions.decide_set_rules(replace(state, created=True, destroyed=False, renamed_to=None, current_rules=None), rules.content)
            new_events.append(ev.NewEvent(ev.RULES_SET, {**copied[0].payload, "description": f"Copied from {source.name} r{rules.number}"}))
        cause = state.version + 1  # the instance.created event
        state = self._record(state, new_events)
        owned = {*DERIVED_KEYS, "POWERSYNC_CONFIG_B64", *RULES_OVERRIDES}
        service = source.link.postgres_service if source.link else None
        try:
            if service and new in self.dokku.postgres_links(service):
                # dokku-postgres linked the clone too; an unlinked instance has no source link.
                self.dokku.postgres_unlink(service, new)
            keys = [key for key in self.dokku.config_keys(new) if key in owned]
            if keys:
                self.dokku.config_unset(new, keys, restart=False)
            self.dokku.config_set(new, {"PS_API_TOKEN": token}, restart=False)
        except DomainError as exc:
            self._record(state, [decisions.outcome(cause, False, str(exc).splitlines()[0])])
            raise
        self._record(state, [decisions.outcome(cause, True)])
        self.out.step(
            f"{new} is a new PowerSync instance with {source.name}'s settings and rules (own slots and API token); "
            f"it runs once linked: `dokku powersync:link {new} <backend-app>`"
        )
        self.out.warn(
            f"Until then a deploy of {new} fails (it has no config): clone with `dokku apps:clone --skip-deploy`"
        )

    def _require_backend_free(self, name: str, backend: str) -> None:
        """A backend hands its clients one POWERSYNC_URL: linking a second instance would silently
        repoint every client of the first."""
        from powersync_plugin import reads

        others = [other for other in reads.instances_linked_to(backend) if other != name]
        if others:
            raise DomainError(
                f"{backend} is already linked to PowerSync instance {others[0]} (its POWERSYNC_URL points there): "
                f"one instance per backend; `dokku powersync:unlink {others[0]} {backend}` first"
            )

    def _backend_secrets(self, state: InstanceState) -> BackendSecrets:
        backend = state.link.backend
        secret_key, _ = _backend_values(backend, self.dokku.config(backend))
        instance_env = self.dokku.config(state.name)
        source = instance_env.get("PS_DATA_SOURCE_URI")
        if not source:
            raise DomainError(f"{state.name} has no PS_DATA_SOURCE_URI: relink it (`dokku powersync:unlink` then `link`)")
        self.out.redactor.add(secret_key, source)
        return BackendSecrets(secret_key, source, instance_env.get("PS_STORAGE_SOURCE_URI"))

    def _check_source(self, service: str, configure_source: bool, dry_run: bool = False) -> list[Action]:
        """Check the source's prerequisites; with --configure-source set wal_level=logical and
        restart it, or, in a dry run, return those as planned actions (a dry run only reads)."""
        planned: list[Action] = []
        wal_level = self._query_value(service, "SHOW wal_level;")
        if wal_level != "logical" and configure_source and dry_run:
            planned = [
                Action(Kind.SET_WAL_LEVEL, service, detail=f"(now {wal_level})"),
                Action(Kind.RESTART, service, detail="postgres service: disconnects every app linked to it", restarts=True),
            ]
        elif wal_level != "logical":
            if not configure_source:
                raise DomainError(
                    f"The source database (dokku-postgres {service}) has wal_level={wal_level}; PowerSync needs logical.\n"
                    f"Fix: echo 'ALTER SYSTEM SET wal_level = logical;' | dokku postgres:connect {service} && "
                    f"dokku postgres:restart {service}\n"
                    "(or rerun with --configure-source; the restart briefly disconnects every app linked to it)"
                )
            self.out.warn(f"Setting wal_level=logical on {service}: restarting it disconnects every app linked to it")
            self.dokku.postgres_query(service, "ALTER SYSTEM SET wal_level = logical;\n")
            self.dokku.postgres_restart(service)
            deadline = time.monotonic() + 60
            while True:
                try:
                    wal_level = self._query_value(service, "SHOW wal_level;")
                    break
                except DomainError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
            if wal_level != "logical":
                raise DomainError(f"wal_level on {service} is still {wal_level} after the restart")
        publications = self._query_value(service, "SELECT count(*) FROM pg_publication WHERE pubname = 'powersync';")
        if publications != "1":
            raise DomainError(
                f"The source database (dokku-postgres {service}) has no publication named powersync.\n"
                f"Fix: echo 'CREATE PUBLICATION powersync FOR ALL TABLES;' | dokku postgres:connect {service}\n"
                "(or FOR TABLE a, b to publish only the tables your sync rules read)"
            )
        return planned

    def _query_value(self, service: str, sql: str) -> str:
        return self.source_db.value(service, sql)

    def _link_database(self, service: str, name: str, dsn: str) -> bool:
        """postgres:link the service to the instance; True if this call made the link.

        dokku-postgres calls an app linked when any of its config vars holds the DSN text, so a
        stale PS_DATA_SOURCE_URI would make the link fail ("Already linked as ..."): trust the
        service's Links line, and clear stale copies first.
        """
        if name in self.dokku.postgres_links(service):
            return False
        service_dsn = self.dokku.postgres_dsn(service)
        self.out.redactor.add(service_dsn)
        stale = [key for key, value in self.dokku.config(name).items() if service_dsn in value or dsn in value]
        if stale:
            self.out.step(f"Clearing stale {', '.join(sorted(stale))} on {name} (phantom link)")
            self.dokku.config_unset(name, stale, restart=False)
        self.out.step(f"Linking postgres service {service} to {name}")
        self.dokku.postgres_link(service, name)
        return True

    def _ensure_storage_database(self, service: str, database: str) -> None:
        if not self.source_db.database_exists(service, database):
            self.out.step(f"Creating storage database {database} on {service}")
            self.source_db.create_database(service, database)

    def _prove_auth(self, state: InstanceState, secret_key: str) -> None:
        """Open a sync stream with a token signed exactly as the backend signs."""
        now = int(time.time())
        claims = {"sub": CHECK_SUBJECT, "aud": state.audience[0], "iat": now, "exp": now + 60}
        token = derive.sign_hs256(secret_key.encode("utf-8"), claims, state.kid)
        container = self.docker.web_container(state.name)
        result = PowerSyncApi(self.docker, container.id, state.api_token).open_sync_stream(token)
        if not result.ok:
            body = self.out.redactor.text(result.body[:300] or result.error)
            raise DomainError(
                f"A token signed like {state.link.backend}'s (HS256, aud={state.audience[0]}, "
                f"kid={state.kid or 'none'}) was refused: HTTP {result.status} {body}"
            )
        self.out.step(f"Auth checked end to end: a token signed like {state.link.backend}'s opened a sync stream")

    def _undo_link(self, name: str, service: Optional[str], linked_database: bool, was_running: bool) -> None:
        if not was_running and self._is_running(name):
            self.dokku.stop(name)
        keys = [key for key in DERIVED_KEYS if key in self.dokku.config_keys(name)]
        self.dokku.config_unset(name, keys, restart=False)
        if linked_database and service:
            self.dokku.postgres_unlink(service, name)

    def _is_running(self, name: str) -> bool:
        container = self.docker.web_container(name)
        return bool(container and container.running)

    def _teardown(self, name: str, state: InstanceState, service: Optional[str], proven: frozenset[str]) -> None:
        self.out.step(f"Tearing down {name}'s replication slots and storage (teardown TEARDOWN)")
        result = self.dokku.run_oneoff(name, "teardown", "TEARDOWN")
        if result.returncode != 0:
            tail = self.out.redactor.text((result.stdout + result.stderr).strip())[-600:]
            raise DomainError(f"teardown of {name} failed (exit {result.returncode}):\n{tail}")
        if service:
            self._require_dropped(self._drop_slots(state, service, proven))

    def _slots_in_use(self, state: InstanceState) -> frozenset[str]:
        """The slots the running instance reports as its own; read before it is stopped, since
        for an adopted instance they are the only proof of which slots are its own."""
        container = self.docker.web_container(state.name)
        if not state.adopted_from or container is None or not container.running:
            return frozenset()
        diagnostics = PowerSyncApi(self.docker, container.id, state.api_token).diagnostics()
        return frozenset(slots_in_use(diagnostics)) if diagnostics else frozenset()

    def _drop_slots(self, state: InstanceState, service: str, proven: frozenset[str] = frozenset()) -> list[Leftover]:
        """Drop whatever slot of this instance is left (a forgotten slot retains WAL until the disk
        fills); returns what is left.

        A created instance's prefix is its own, so every slot PowerSync named under it is. An
        adopted one may share its prefix (PowerSync's default `powersync_`) with other hand-made
        deployments on the same server: only the slots it reported in use are dropped.
        """
        left = []
        for slot in self.source_db.instance_slots(service, state.slot_prefix):
            what, command = f"slot {slot.name} on {service}", drop_slot_command(service, slot.name)
            if state.adopted_from and slot.name not in proven:
                reason = (
                    f"left, as it cannot be proven to be {state.name}'s (the prefix {state.slot_prefix} "
                    "may be shared by a hand-made deployment there)"
                )
                left.append(Leftover(what, reason, command, unproven=True))
                continue
            self.out.step(f"Dropping replication slot {slot.name}")
            problem = self.source_db.drop_slot(service, slot.name)
            if problem:
                left.append(Leftover(what, problem, command))
        return left

    def _drop_storage_database(self, state: InstanceState, service: str) -> list[Leftover]:
        if not state.storage_database:
            return []
        self.out.step(f"Dropping storage database {state.storage_database}")
        problem = self.source_db.drop_database(service, state.storage_database)
        if problem:
            what = f"storage database {state.storage_database} on {service}"
            return [Leftover(what, problem, drop_database_command(service, state.storage_database))]
        return []

    def _require_dropped(self, left: list[Leftover]) -> None:
        """What the instance owns must go; what it cannot prove is its own stays, and is said."""
        for item in left:
            if item.unproven:
                self.out.warn(str(item))
        failed = [item for item in left if not item.unproven]
        if failed:
            raise DomainError("Could not drop:\n" + "\n".join(f"  - {item}" for item in failed))

    def _print_plan(self, plan: Plan) -> None:
        self.out.header("Plan (dry run: nothing changed)")
        for line in plan.lines():
            self.out.detail(line)


def _backend_values(backend: str, env: dict[str, str]) -> tuple[str, str]:
    missing = [key for key in ("SECRET_KEY", "DATABASE_URL") if not env.get(key)]
    if missing:
        raise DomainError(
            f"{backend} has no {' and no '.join(missing)}: the instance derives its JWT key from SECRET_KEY and "
            f"its source from DATABASE_URL. Set them on {backend} (`dokku config:set {backend} ...`) or link its "
            "dokku-postgres service first"
        )
    return env["SECRET_KEY"], env["DATABASE_URL"]


def _storage_uri(state: InstanceState, source_uri: str, instance_env: dict[str, str]) -> Optional[str]:
    """Bucket storage: a database beside the source, the URI given at create, or the source itself."""
    if state.storage_database:
        return derive.with_database(source_uri, state.storage_database)
    if state.storage == "uri":
        return instance_env.get("PS_STORAGE_SOURCE_URI")
    return None


def _restored_text(restored: bool, what: str) -> str:
    return f"Restored: {what}." if restored else "Could NOT restore everything: see the warnings above."


def _apply_preview(state: InstanceState, new_events: list[ev.NewEvent]) -> InstanceState:
    """The state the new events would produce, without storing them (dry runs)."""
    for item in new_events:
        state = apply(state, ev.StoredEvent(0, state.name, state.version + 1, item.type, item.schema, item.payload, "", "", ""))
    return state
