"""Sync rules: set, roll back, and the offline check by the image's own parser.

Rules are checked before they are recorded: by the running instance's API, or, when none runs,
by the parser in its image (a one-off container). A refusal changes nothing. A linked, running
instance takes them through PowerSync's deploy API (rules_delivery.py): no restart; the command
follows the reprocessing until the new rules are active, unless told not to wait.
"""
from __future__ import annotations

from typing import Callable, Optional

from powersync_plugin.adapters.powersync_api import PowerSyncApi
from powersync_plugin import rules_delivery
from powersync_plugin.backend import backend_secrets
from powersync_plugin.core import decisions
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.planner import RULES_OVERRIDES, Action, Kind, Plan
from powersync_plugin.core.rules import check_rules, decode_rules
from powersync_plugin.core.state import InstanceState
from powersync_plugin.pipeline import changing, settle
from powersync_plugin.publishing import (
    apply_preview, base_image, preview_plan, publish_or_restore, rendered_config_b64, require_ready,
)
from powersync_plugin.read_model import rules_diff
from powersync_plugin.services import Services


def set_rules(s: Services, name: str, raw: bytes, dry_run: bool, wait: bool = True) -> None:
    content = decode_rules(raw)
    check_rules(content)
    with changing(s, name, dry_run) as state:
        decisions.require_live(state)
        _set_rules_locked(s, state, content, dry_run, wait=wait)


def rollback_rules(
    s: Services, name: str, to: Optional[int], dry_run: bool, force: bool, confirm: Callable[[str], bool],
    wait: bool = True,
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
        how = "deployed through the service's API" if state.link else "stored until link"
        s.out.step(f"Plan: rules {before} -> r{target.number}, {how}, backend unchanged")
        if dry_run:
            return
        if not force and not confirm(f"Roll {name} back to the rules of r{target.number}?"):
            raise DomainError("Not confirmed: nothing changed (use --force to skip the question)")
        _set_rules_locked(s, state, target.content, dry_run=False, rolled_back_to=target.number, wait=wait)


def _set_rules_locked(
    s: Services, state: InstanceState, content: str, dry_run: bool, rolled_back_to: Optional[int] = None,
    summary_only: bool = True, wait: bool = True,
) -> None:
    name = state.name
    new_events = decisions.decide_set_rules(state, content, rolled_back_to)
    container = s.docker.web_container(name) if state.link else None
    running = container is not None and container.running
    if not new_events and not state.managed_config and not dry_run:
        s.out.step("Rules unchanged; publishing the plugin-rendered config for the first time (adopted instance)")
        state = s.record(state, [ev.NewEvent(ev.CONFIG_PUBLISHED, {"cause": "first managed publish after adoption"})])
        publish_or_restore(s, state, backend_secrets(s, state), state.version, wait_rules=wait)
        _fail_if_retrying(s)
        return
    if not new_events:
        revision = state.current_rules
        s.out.step(f"Rules unchanged (r{revision.number}, {revision.digest[:12]}): nothing to deploy")
        if state.link:
            require_ready(s, name, state)
        return
    if running:
        _validate_on_instance(s, state, container.id, content)
    else:
        check_rules_offline(s, state, content, dry_run)  # no instance to ask (finding 7)
    through_publish = state.link is not None and _needs_publish(s, state, running)
    if dry_run:
        if summary_only:
            s.out.step(new_events[0].payload["description"])
        if not state.link:
            s.out.step("Not linked: the rules would be stored and deployed at link")
            return
        after = apply_preview(state, new_events)
        actions = preview_plan(s, after).actions if through_publish else ()
        deploy = Action(Kind.DEPLOY_RULES, name, detail=f"r{after.current_rules.number} through the service's API (no restart)")
        s.print_plan(Plan(tuple(actions) + (deploy,)))
        return
    state = s.record(state, new_events)
    revision = state.current_rules
    s.out.step(f"Rules r{revision.number} recorded ({revision.digest[:12]}): {revision.description}")
    if not state.link:
        s.out.step(f"{name} is not linked yet: the rules are deployed by `dokku powersync:link {name} <backend>`")
        return
    if through_publish:
        # Not running, or its config still carries rules (made before rules moved to the deploy
        # API, or adopted): one publish moves it over, then the rules are deployed.
        publish_or_restore(s, state, backend_secrets(s, state), state.version, wait_rules=wait)
        _fail_if_retrying(s)
        return
    deployed: list[rules_delivery.Delivery] = []
    settle(
        s, state, state.version, lambda current: deployed.append(rules_delivery.deploy(s, current, container.id, revision)),
        failed=lambda exc, _: f"{exc}\nNothing changed on the service: it keeps serving {_serving(state)}",
    )
    follow_activation(s, name, container.id, deployed[0], wait)


def follow_activation(s: Services, name: str, container_id: str, delivery: rules_delivery.Delivery, wait: bool) -> None:
    """Follow the deployed revision to activation, and record how that ended."""
    if not wait:
        s.out.step(f"Not waiting (--no-wait): r{delivery.revision.number} activates once replicated; "
                   f"`dokku powersync:status {name}` follows it")
        return
    state = s.load(name)
    activation = rules_delivery.follow(s, state, container_id, delivery)
    event = rules_delivery.activation_event(activation, delivery)
    if event is not None:
        s.record(state, [event])
    if activation.state == "failed":
        raise DomainError(
            f"r{delivery.revision.number} did not become active on {name}: {activation.reason}\n"
            f"The previous rules keep serving. Fix the rules and set them again, or "
            f"`dokku powersync:rollback-rules {name}`"
        )
    if activation.state == "deploying":
        s.out.warn(f"r{delivery.revision.number} is still deploying after {activation.seconds:.0f}s (the previous rules "
                   f"keep serving): `dokku powersync:status {name}` follows it")
    if activation.state == "retrying":  # recorded and deploying, but not active: the operator acts
        raise DomainError(rules_delivery.retrying_text(state, activation, delivery.revision))


def _fail_if_retrying(s: Services) -> None:
    """The publish deployed the rules, which the service keeps retrying: recorded and deploying,
    but not active, so set-rules fails as when it deploys them itself (the publish stays settled)."""
    if s.rules_retrying:
        raise DomainError("The rules are recorded and deploying, but not active: the service keeps retrying them (above)")


def _serving(state: InstanceState) -> str:
    return f"r{state.rules_active}" if state.rules_active else "its previous rules"


def _needs_publish(s: Services, state: InstanceState, running: bool) -> bool:
    """Whether the rules must wait for a publish: the instance is stopped, or its config is not
    the one the plugin renders now (rules in the config, an override key, adopted leftovers)."""
    if not running or not state.managed_config:
        return True
    env = s.dokku.config(state.name)
    if any(key in env for key in RULES_OVERRIDES):
        return True
    return env.get("POWERSYNC_CONFIG_B64") != rendered_config_b64(state)


def _validate_on_instance(s: Services, state: InstanceState, container_id: str, content: str) -> None:
    """The running instance's own parser decides before anything is recorded: a refusal changes
    nothing (the deploy API would refuse the same rules, but after the intent is journaled)."""
    validation = PowerSyncApi(s.docker, container_id, state.api_token).validate_rules(content)
    if validation.reachable and not validation.valid:
        reasons = "\n".join(f"  - {error}" for error in validation.errors)
        raise DomainError(f"The instance rejected these rules (nothing changed):\n{reasons}")
    if not validation.reachable:
        s.out.warn(f"Could not validate on the running instance ({validation.errors[0]}); the deploy API will decide")


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
