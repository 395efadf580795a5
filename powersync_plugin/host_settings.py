"""What an instance app needs from Dokku beyond its env: the container memory limit
(`resource:limit`, as `create` sets it) and, with `metrics` set, the deploy-phase docker option
publishing PowerSync's Prometheus port on the host's loopback.

Both take effect only when a container starts (Dokku applies neither to a running one), so they are
written without restart before the publish's single restart; a publish that would not restart
otherwise gets one. A failed publish puts them back as they were.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from powersync_plugin.core import service_settings
from powersync_plugin.core.planner import Action, Kind, Plan
from powersync_plugin.core.state import InstanceState
from powersync_plugin.services import Services

MEGABYTE = 1024 * 1024
KINDS = (Kind.SET_MEMORY, Kind.ADD_DOCKER_OPTION, Kind.REMOVE_DOCKER_OPTION)


@dataclass(frozen=True)
class HostObserved:
    memory_bytes: Optional[int]  # the running web container's limit; None when none runs
    publish_options: tuple[str, ...]  # deploy-phase options made by `metrics`, as Dokku stores them


def observe_host(s: Services, name: str, container: Any = ...) -> HostObserved:
    """`container`: the app's web container (None: it has none), when the caller just inspected it."""
    if container is ...:
        container = s.docker.web_container(name)
    running = container is not None and container.running
    options = tuple(o for o in s.reads.take("deploy_options", name) if service_settings.is_metrics_publish_option(o))
    return HostObserved(container.memory_bytes if running else None, options)


def host_actions(state: InstanceState, observed: HostObserved) -> list[Action]:
    """Pure: the writes that bring the app's limit and metrics publication to the journal's."""
    actions = []
    wanted = service_settings.metrics_publish_option(state.metrics_port) if state.metrics_port else None
    for option in observed.publish_options:
        if option != wanted:
            actions.append(Action(Kind.REMOVE_DOCKER_OPTION, state.name, detail=option))
    if wanted and wanted not in observed.publish_options:
        actions.append(Action(Kind.ADD_DOCKER_OPTION, state.name, detail=wanted))
    # No running container: the next start reads Dokku's stored limit, which a setting made
    # while unlinked has not reached yet.
    if observed.memory_bytes != state.memory_mb * MEGABYTE:
        actions.append(Action(Kind.SET_MEMORY, state.name, detail=f"{state.memory_mb}m"))
    return actions


def extend(plan: Plan, state: InstanceState, observed: HostObserved) -> Plan:
    """`plan` preceded by the host writes; with a restart when the plan has none."""
    actions = host_actions(state, observed)
    if not actions:
        return plan
    if not plan.restarts:
        actions.append(Action(Kind.RESTART, state.name, restarts=True))
    return Plan(tuple(actions) + plan.actions)


def execute(s: Services, action: Action) -> None:
    app, out = action.app, s.out
    if action.kind is Kind.SET_MEMORY:
        out.step(f"Setting the memory limit of {app} to {action.detail} (resource:limit)")
        s.dokku.memory_limit(app, action.detail)
    elif action.kind is Kind.ADD_DOCKER_OPTION:
        out.step(f"Publishing the metrics port on the host's loopback ({action.detail})")
        s.dokku.deploy_option_add(app, action.detail)
    else:
        out.step(f"Removing the metrics port publication {action.detail}")
        s.dokku.deploy_option_remove(app, action.detail)


def restore(s: Services, name: str, before: HostObserved) -> None:
    """Put the options and, when a container ran before, its limit back (a failed publish)."""
    now = observe_host(s, name)
    for option in now.publish_options:
        if option not in before.publish_options:
            s.dokku.deploy_option_remove(name, option)
    for option in before.publish_options:
        if option not in now.publish_options:
            s.dokku.deploy_option_add(name, option)
    if before.memory_bytes:
        s.dokku.memory_limit(name, f"{before.memory_bytes // MEGABYTE}m")
