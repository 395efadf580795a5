"""Sync rules: set, roll back, and the offline check by the image's own parser.

Rules are checked before they are recorded: by the running instance's API, or, when none runs,
by the parser in its image (a one-off container). A refusal changes nothing.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

from powersync_plugin.adapters.powersync_api import PowerSyncApi
from powersync_plugin.backend import BackendSecrets, backend_secrets
from powersync_plugin.core import decisions
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.rules import check_rules, decode_rules
from powersync_plugin.core.state import InstanceState
from powersync_plugin.pipeline import changing
from powersync_plugin.publishing import apply_preview, base_image, preview_plan, publish_or_restore, require_ready
from powersync_plugin.read_model import rules_diff
from powersync_plugin.services import Services


def set_rules(s: Services, name: str, raw: bytes, dry_run: bool) -> None:
    content = decode_rules(raw)
    check_rules(content)
    with changing(s, name, dry_run) as state:
        decisions.require_live(state)
        _set_rules_locked(s, state, content, dry_run)


def rollback_rules(
    s: Services, name: str, to: Optional[int], dry_run: bool, force: bool, confirm: Callable[[str], bool],
) -> None:
    with changing(s, name, dry_run) as state:
        decisions.require_live(state)
        current = state.current_rules
        target = decisions.rollback_target(state, to)
        if current is not None and target.content == current.content:
            s.out.step(f"{name} already runs the rules of r{target.number} (r{current.number}): nothing to do")
            return
        before = f"r{current.number if current else 0}"
        s.out.header(f"Rules diff {before} -> r{target.number}")
        for line in rules_diff(current.content if current else "", target.content, before, f"r{target.number}"):
            s.out.raw(line)
        _set_rules_locked(s, state, target.content, dry_run=True, rolled_back_to=target.number, summary_only=False)
        restarts = "1 restart" if state.link else "no restart (not linked)"
        s.out.step(f"Plan: rules {before} -> r{target.number}, {restarts}, backend unchanged")
        if dry_run:
            return
        if not force and not confirm(f"Roll {name} back to the rules of r{target.number}?"):
            raise DomainError("Not confirmed: nothing changed (use --force to skip the question)")
        _set_rules_locked(s, state, target.content, dry_run=False, rolled_back_to=target.number)


def _set_rules_locked(
    s: Services, state: InstanceState, content: str, dry_run: bool, rolled_back_to: Optional[int] = None,
    summary_only: bool = True,
) -> None:
    name = state.name
    new_events = decisions.decide_set_rules(state, content, rolled_back_to)
    container = s.docker.web_container(name) if state.link else None
    running = container is not None and container.running
    if not new_events and not state.managed_config and not dry_run:
        s.out.step("Rules unchanged; publishing the plugin-rendered config for the first time (adopted instance)")
        state = s.record(state, [ev.NewEvent(ev.CONFIG_PUBLISHED, {"cause": "first managed publish after adoption"})])
        publish_or_restore(s, state, backend_secrets(s, state), state.version)
        return
    if not new_events:
        revision = state.current_rules
        s.out.step(f"Rules unchanged (r{revision.number}, {revision.digest[:12]}): nothing to publish")
        if state.link:
            require_ready(s, name, state)
        return
    secrets: Optional[BackendSecrets] = None
    if not running:
        check_rules_offline(s, state, content, dry_run)  # no instance to ask (finding 7)
    if running:
        secrets = _validate_on_instance(s, state, container.id, content, dry_run)
    if dry_run:
        if summary_only:
            s.out.step(new_events[0].payload["description"])
        if state.link:
            s.print_plan(preview_plan(s, apply_preview(state, new_events)))
        else:
            s.out.step("Not linked: the rules would be stored and published at link")
        return
    state = s.record(state, new_events)
    revision = state.current_rules
    s.out.step(f"Rules r{revision.number} recorded ({revision.digest[:12]}): {revision.description}")
    if not state.link:
        s.out.step(f"{name} is not linked yet: the rules are published by `dokku powersync:link {name} <backend>`")
        return
    publish_or_restore(s, state, secrets or backend_secrets(s, state), state.version)


def _validate_on_instance(
    s: Services, state: InstanceState, container_id: str, content: str, dry_run: bool,
) -> Optional[BackendSecrets]:
    """The instance validates (a `docker exec` and the service's parse) while the backend's
    secrets are read from Dokku; only reads happen before the verdict, so a refusal still
    changes nothing. The Docker SDK is loaded first, here: importing one package from two
    threads at once can hand either a half-initialised module."""
    s.docker.client  # noqa: B018
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(PowerSyncApi(s.docker, container_id, state.api_token).validate_rules, content)
        try:
            secrets = None if dry_run else backend_secrets(s, state)
            secrets_problem = None
        except DomainError as exc:
            secrets, secrets_problem = None, exc
        validation = pending.result()
    if validation.reachable and not validation.valid:
        reasons = "\n".join(f"  - {error}" for error in validation.errors)
        raise DomainError(f"The instance rejected these rules (nothing changed):\n{reasons}")
    if not validation.reachable:
        s.out.warn(f"Could not validate on the running instance ({validation.errors[0]}); readiness will decide")
    if secrets_problem is not None:
        raise secrets_problem
    return secrets


def check_rules_offline(s: Services, state: InstanceState, content: str, dry_run: bool, stored: str = "") -> None:
    """Refuse rules the instance's image would reject, when no running instance can say so:
    its own parser runs in a one-off container. New rules are never recorded unchecked: if
    the check cannot run, set-rules is refused. A dry run starts no container, so it only
    says so. `stored` names a recorded revision about to be deployed (link): if that check
    cannot run, a warning, and the deploy's readiness and stay-up checks decide as before."""
    reference = f"{state.image}:{state.image_version}"
    if dry_run:
        s.out.step(f"Not checked by the rules parser in {reference}: a real run checks them first (a dry run starts no container)")
        return
    if s.docker.image(reference) is None:
        try:
            base_image(s, state)
        except DomainError as exc:
            if stored:
                raise
            raise DomainError(f"{exc}\nThe rules are checked by the parser in that image before they are recorded: nothing changed") from None
    verdict = s.docker.check_rules(reference, content, state.name)
    if verdict.problem and stored:
        s.out.warn(f"Could not check the {stored} with the parser in {reference} ({verdict.problem}); readiness will decide")
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
