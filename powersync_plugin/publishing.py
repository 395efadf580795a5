"""Publishing a config to an instance: desired env, observe, plan, deploy, verify, restore.

Everything but rules reaches the service this way: one zero-downtime restart through Dokku,
gated by Dokku's own startup checks (readiness, and the container still up STAY_UP seconds after
it started: adapters/startup_checks.py); a failure puts the previous config and image back.
Rules go through the service's own deploy API (rules_delivery.py), after the publish.
"""
from __future__ import annotations

import base64
import datetime
import re
import time
from typing import Optional

from powersync_plugin import host_settings, rules_delivery, settings
from powersync_plugin.adapters.docker_engine import ContainerView, ImageView, derived_tag
from powersync_plugin.adapters.dokku import DokkuCommandFailed
from powersync_plugin.adapters.powersync_api import PowerSyncApi
from powersync_plugin.adapters.startup_checks import READINESS_CHECK, STAY_UP_CHECK, checks_passed, stay_up_seconds
from powersync_plugin.backend import DERIVED_KEYS, BackendSecrets
from powersync_plugin.core import config_render, derive, service_settings
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.planner import Action, Kind, Observed, Plan, plan_publish
from powersync_plugin.core.projector import apply
from powersync_plugin.core.state import InstanceState
from powersync_plugin.pipeline import first_line, restored_text, settle
from powersync_plugin.services import Services


def rendered_config_b64(state: InstanceState) -> str:
    return base64.b64encode(config_render.render(config_render.desired_config(state)).encode()).decode()


def desired_env(state: InstanceState, backend_secrets: BackendSecrets) -> dict[str, str]:
    env = {
        "POWERSYNC_CONFIG_B64": rendered_config_b64(state),
        "PS_SECRET_KEY_B64": derive.secret_key_b64(backend_secrets.secret_key),
        "PS_DATA_SOURCE_URI": backend_secrets.source_uri,
        "PS_API_TOKEN": state.api_token,
        "NODE_OPTIONS": service_settings.node_options(state.memory_mb),
    }
    if backend_secrets.storage_uri:
        env["PS_STORAGE_SOURCE_URI"] = backend_secrets.storage_uri
    return env


def observe(s: Services, name: str) -> Observed:
    return _observe(s, name)[0]


def observe_reads(name: str, source_image: bool = False, host: bool = False) -> list[tuple]:
    """The Dokku reads _observe takes (a change may start them ahead: read_ahead.py)."""
    reads = [("config", name), ("ports_map", name), ("tls_enabled", name)]
    reads += [("source_image", name)] if source_image else []
    return reads + ([("deploy_options", name)] if host else [])


def _observe(
    s: Services, name: str, source_image: bool = False, host: bool = False,
) -> tuple[Observed, str, Optional[host_settings.HostObserved]]:
    """What the planner compares (with `source_image`, also the image git:from-image last deployed,
    the restore target; with `host`, the memory limit and docker options). The `dokku` reads are
    independent processes: they run at once (or were started ahead by the change: read_ahead.py)
    while this thread inspects the container (the Docker client is not shared between threads).
    What is observed is the state before the publish writes: the answers are dropped after."""
    s.reads.start(*observe_reads(name, source_image, host))
    try:
        container = s.docker.web_container(name)
        observed = Observed(
            env=s.reads.take("config", name),
            ports=tuple(s.reads.take("ports_map", name)),
            tls=s.reads.take("tls_enabled", name),
            deployed_image=container.image if container else None,
            running=bool(container and container.running),
        )
        image = s.reads.take("source_image", name) if source_image else ""
        return observed, image, host_settings.observe_host(s, name, container) if host else None
    finally:
        s.reads.forget()


def publish_plan(state: InstanceState, observed: Observed, image: str, env: Optional[dict] = None) -> Plan:
    if env is None:  # a dry run: compare only what can be known without reading secrets
        env = {key: observed.env[key] for key in DERIVED_KEYS if key in observed.env}
        env["POWERSYNC_CONFIG_B64"] = rendered_config_b64(state)
        env["NODE_OPTIONS"] = service_settings.node_options(state.memory_mb)
    return plan_publish(state.name, env, image, observed, state.cleanup_keys, state.cleanup_mounts)


def preview_plan(s: Services, state: InstanceState) -> Plan:
    """The publish a dry run would make: against the derived tag a real run would build."""
    observed, _, host = _observe(s, state.name, host=True)
    return host_settings.extend(publish_plan(state, observed, derived_tag_preview(s, state)), state, host)


def base_image(s: Services, state: InstanceState) -> tuple[str, ImageView]:
    reference = f"{state.image}:{state.image_version}"
    image = s.docker.image(reference)
    if image is None:
        s.out.step(f"Pulling {reference}")
        image = s.docker.pull(reference)
    return reference, image


def derived_cron(state: InstanceState) -> tuple:
    """The app.json cron entries the instance's image carries (`compact-schedule`)."""
    return tuple(service_settings.compact_cron(state.compact_schedule))


def derived_tag_preview(s: Services, state: InstanceState) -> str:
    reference = f"{state.image}:{state.image_version}"
    image = s.docker.image(reference)
    return f"(derived from {reference})" if image is None else derived_tag(image, state.image_version, derived_cron(state))


def publish(
    s: Services, state: InstanceState, backend_secrets: BackendSecrets, wait_rules: bool = True,
    observed: Optional[Observed] = None, host: Optional[host_settings.HostObserved] = None,
    restore: Optional[dict] = None,
) -> None:
    """Apply the desired config with at most one restart, gated on readiness. `observed`, `host`:
    read just before by the caller (publish_or_restore), so they are not read twice. `restore`:
    what the caller restores on failure; the image git:from-image last deployed is added to it
    before another image is deployed, when the caller has not read it yet."""
    name = state.name
    reference, base = base_image(s, state)
    tag = s.docker.build_derived(base, reference, state.image_version, derived_cron(state))
    env = desired_env(state, backend_secrets)
    s.out.redactor.add(*env.values())
    plan = publish_plan(state, observed or observe(s, name), tag, env)
    plan = host_settings.extend(plan, state, host or host_settings.observe_host(s, name))
    if restore is not None and "image" not in restore and any(a.kind is Kind.DEPLOY_IMAGE for a in plan.actions):
        restore["image"] = s.dokku.source_image(name)
    output = ""  # of the restarting call: Dokku's startup checks log there
    for action in plan.actions:
        try:
            output = _execute(s, action, env, tag) or output
        except DokkuCommandFailed as exc:
            raise _refused(name, exc) from None
    if plan.restarts:
        container_id = _verify_deployed(s, state, output).id
    else:
        s.out.step("Config unchanged: no restart")
        require_ready(s, name, state)
        container_id = s.docker.web_container(name).id
    # The config carries no rules: the service keeps the rules its storage holds active across
    # restarts; the journal's revision is deployed through its API when they differ.
    rules_delivery.ensure(s, state, container_id, wait=wait_rules)


def _execute(s: Services, action: Action, env: dict[str, str], tag: str) -> str:
    """Run one action; returns the output of a call that restarted the app (else "")."""
    app, out, dokku = action.app, s.out, s.dokku
    if action.kind in host_settings.KINDS:
        host_settings.execute(s, action)
    elif action.kind is Kind.REMOVE_PORTS:
        out.step(f"Removing port mapping {action.detail} (http:80 must reach PowerSync's 8080)")
        dokku.ports_remove(app, *action.detail.split())
    elif action.kind is Kind.ADD_PORTS:
        out.step(f"Adding port mapping {action.detail} to {app} (other mappings kept)")
        dokku.ports_add(app, *action.detail.split())
    elif action.kind is Kind.UNSET_CONFIG:
        out.step(f"Removing {', '.join(action.keys)} (overrides of the published rules, or leftovers)")
        dokku.config_unset(app, action.keys, restart=False)
    elif action.kind is Kind.UNMOUNT:
        out.step(f"Unmounting the inert storage mount {action.detail}")
        dokku.storage_unmount(app, action.detail)
    elif action.kind is Kind.SET_CONFIG:
        values = {key: env[key] for key in action.keys}
        if action.restarts:
            out.step(f"Publishing {', '.join(action.keys)} and restarting {app} (waiting for readiness)")
        output = dokku.config_set(app, values, restart=action.restarts)
        return output if action.restarts else ""
    elif action.kind is Kind.DEPLOY_IMAGE:
        out.step(f"Deploying {tag} to {app} (waiting for readiness)")
        output = dokku.deploy_image(app, tag)
        if output is None:
            out.step("Image unchanged: restarting to apply the config")
            return dokku.restart(app)
        return output
    elif action.kind is Kind.RESTART:
        out.step(f"Restarting {app} (waiting for readiness)")
        return dokku.restart(app)
    else:  # pragma: no cover - plan_publish emits only the kinds above
        raise AssertionError(action.kind)
    return ""


def _refused(name: str, exc: DokkuCommandFailed) -> DomainError:
    """Dokku's startup checks refused the new container (the previous one kept serving): say so in
    the plugin's words when it was the stay-up check, the one a dying process fails."""
    failures = [line.strip(" !") for line in exc.output.splitlines() if f"Failure in name='{STAY_UP_CHECK}'" in line]
    if not failures:
        return exc
    ready = f"Healthcheck succeeded name='{READINESS_CHECK}'" in exc.output
    return DomainError(
        f"The new container of {name} did not stay up: it exited {'after' if ready else 'before'} turning ready, "
        f"within {stay_up_seconds()}s of starting, so Dokku kept the previous container serving (its output: "
        f"`dokku logs:failed {name}`)\n" + "\n".join(failures)
    )


def _verify_deployed(s: Services, state: InstanceState, output: str) -> ContainerView:
    """Dokku switched only after its startup checks passed (readiness 2xx, then still up with no
    restart STAY_UP seconds after it started: a process with invalid rules turns ready briefly,
    then exits), and its output says so for this deploy: one inspect confirms the container it
    switched to, without probing again what the checks proved. When the output does not show
    both checks passing (`checks:skip`/`checks:disable`, or an older image's checks), the plugin
    probes readiness, and holds the stay-up gate itself for a container younger than the window."""
    name = state.name
    container = s.docker.web_container(name)
    if container is None or not container.running:
        raise DomainError(f"{name} has no running container after the deploy")
    window = stay_up_seconds()
    if container.restart_count == 0 and checks_passed(output):
        s.out.step(f"The new container answered readiness and is up {window}s with no restart (Dokku's startup checks)")
        return container
    remaining = window - _seconds_up(container)
    if remaining <= 0 and container.restart_count == 0:
        s.out.step(f"The new container is up {window}s with no restart (Dokku's startup checks); checking readiness")
        require_ready(s, name, state, container_id=container.id)
        return container
    stayed_up = container if container.restart_count == 0 else None
    if stayed_up is not None:
        require_ready(s, name, state, container_id=container.id)
        remaining = max(window - _seconds_up(container), 0.0)  # inspected at least once
        s.out.step(f"Dokku ran no startup checks: checking the new container stays up ({remaining:.0f}s)")
        started = time.monotonic()
        stayed_up = s.docker.wait_stays_up(container.id, remaining)
        s.waited += time.monotonic() - started
    if stayed_up is None:
        logs = s.out.redactor.text(s.docker.logs_tail(container.id, 8))
        raise DomainError(f"The new container of {name} exited after turning ready:\n{logs}")
    return stayed_up


def _seconds_up(container: ContainerView) -> float:
    """Seconds since the container started (Docker's StartedAt: RFC 3339 with nanoseconds)."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", container.started_at)
    if not match:
        return 0.0
    started = datetime.datetime.fromisoformat(match.group(1) + match.group(3).replace("Z", "+00:00"))
    return time.time() - started.timestamp() - float("0" + (match.group(2) or ".0")[:7])


def require_ready(
    s: Services, name: str, state: InstanceState, container_id: Optional[str] = None, wait: Optional[float] = None,
) -> None:
    if container_id is None:
        container = s.docker.web_container(name)
        if container is None or not container.running:
            raise DomainError(f"{name} is not running: `dokku ps:report {name}`, `dokku logs {name}`")
        container_id = container.id
    api = PowerSyncApi(s.docker, container_id, state.api_token)
    started, service_before = time.monotonic(), s.docker.service_seconds
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
        s.waited += time.monotonic() - started
        s.docker.service_seconds = service_before  # already counted as waiting


def publish_or_restore(
    s: Services, state: InstanceState, backend_secrets: BackendSecrets, cause: int, wait_rules: bool = True,
    source_image: bool = True,
) -> None:
    """Settle the recorded intent `cause` by publishing; a failure restores the previous config.
    `source_image=False`: the change keeps the image (rotate), so the image to restore is read
    only if the publish deploys another one after all."""
    name = state.name
    observed, previous_image, previous_host = _observe(s, name, source_image=source_image, host=True)
    previous_env = dict(observed.env)
    restore = {"image": previous_image} if source_image else {}

    def undo(exc: DomainError) -> None:
        s.out.warn(f"Publishing failed: {first_line(exc)}")
        s.out.step("Restoring the previous config and image")
        host_settings.restore(s, name, previous_host)
        _restore(s, state, previous_env, restore.get("image", ""))

    settle(
        s, state, cause,
        lambda current: publish(s, current, backend_secrets, wait_rules, observed, previous_host, restore),
        undo=undo,
        failed=lambda exc, restored: f"Publishing to {name} failed: {exc}\n"
        + restored_text(restored, "the previous config and image are back and the instance is ready"),
    )
    s.out.step(f"Published to {name}")


def _restore(s: Services, state: InstanceState, previous_env: dict[str, str], previous_image: str) -> None:
    """Put back the config and, when the failed publish deployed another image, that image too:
    a restart alone would run the new image with the old config."""
    name = state.name
    current = s.dokku.config(name)
    changed = {key: value for key, value in previous_env.items() if current.get(key) != value}
    added = [key for key in current if key not in previous_env]
    s.dokku.config_unset(name, added, restart=False)
    s.dokku.config_set(name, changed, restart=False)
    if previous_image and s.dokku.source_image(name) != previous_image:
        s.out.step(f"Redeploying the previous image {previous_image} (waiting for readiness)")
        if s.dokku.deploy_image(name, previous_image) is not None:
            require_ready(s, name, state)
            return
    container = s.docker.web_container(name)
    healthy = container is not None and container.running and s.docker.container(container.id).restart_count == 0
    if healthy:
        try:
            require_ready(s, name, state, container.id, wait=5)
            return
        except DomainError:
            pass
    s.dokku.restart(name)
    require_ready(s, name, state)


def apply_preview(state: InstanceState, new_events: list[ev.NewEvent]) -> InstanceState:
    """The state the new events would produce, without storing them (dry runs)."""
    for item in new_events:
        state = apply(state, ev.StoredEvent(0, state.name, state.version + 1, item.type, item.schema, item.payload, "", "", ""))
    return state
