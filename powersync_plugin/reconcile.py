"""Reconcile: converge the app on the journal, after a crash mid-command or drift made by hand.

`reconcile_locked` is also what the change pipeline runs before any command that finds an
interrupted change (wiring.py hands it to the pipeline).
"""
from __future__ import annotations

from powersync_plugin import host_settings, rules_delivery
from powersync_plugin.backend import backend_secrets, instance_url
from powersync_plugin.core import decisions
from powersync_plugin.core import events as ev
from powersync_plugin.core.planner import Action, Kind, Plan
from powersync_plugin.core.projector import project
from powersync_plugin.core.state import InstanceState
from powersync_plugin.lifecycle import apply_destroy
from powersync_plugin.linking import apply_unlink
from powersync_plugin.pipeline import changing, settle
from powersync_plugin.publishing import base_image, derived_cron, derived_tag_preview, desired_env, observe, publish_or_restore, publish_plan
from powersync_plugin.services import Services


def reconcile(s: Services, name: str, dry_run: bool) -> None:
    with changing(s, name, dry_run, finish_interrupted=False) as state:  # finishing it is this command
        reconcile_locked(s, state, dry_run)
        # a domain or certificate change the triggers missed (plugin disabled, files by hand)
        follow_url(s, name, "powersync:reconcile", "its domain or certificate changed", dry_run)


def reconcile_locked(s: Services, state: InstanceState, dry_run: bool) -> None:
    name = state.name
    last_version, last_type = state.intents[-1] if state.intents else (0, "")
    interrupted = last_version and last_version not in state.outcomes
    if interrupted:
        _remove_interrupted_deploy_containers(s, name, dry_run)
    if interrupted and last_type in (ev.BACKEND_UNLINKED, ev.INSTANCE_DESTROYED):
        _finish_interrupted(s, state, last_version, last_type, dry_run)
        return
    decisions.require_live(state)
    pending = state.pending_intent
    if state.link is None:
        if pending is not None and not dry_run:
            s.record(state, [decisions.outcome(pending, False, "interrupted before it was applied; nothing deployed")])
        s.out.step(f"{name} is not linked: nothing deployed to converge")
        return
    secrets = backend_secrets(s, state)
    if dry_run:  # compare against the tag a real run would build; a dry run pulls and builds nothing
        tag = derived_tag_preview(s, state)
    else:
        reference, base = base_image(s, state)
        tag = s.docker.build_derived(base, reference, state.image_version, derived_cron(state))
    observed = observe(s, name)
    plan = publish_plan(state, observed, tag, desired_env(state, secrets))
    plan = host_settings.extend(plan, state, host_settings.observe_host(s, name))  # a limit or option changed by hand
    rules = _rules_on_service(s, state) if observed.running and not plan.actions else None
    rules_drift = rules is not None and not rules_delivery.in_sync(rules, state.current_rules)
    if dry_run or (not plan.actions and pending is None and not rules_drift):
        if rules_drift:
            detail = f"r{state.current_rules.number} through the service's API (no restart): " + rules_delivery.describe_drift(rules, state.current_rules)
            plan = Plan(plan.actions + (Action(Kind.DEPLOY_RULES, name, detail=detail),))
        if plan.actions:
            s.print_plan(plan)
        else:
            s.out.step(f"{name} matches its journal (revision {state.version})")
            if not dry_run and rules is not None and state.rules_active != state.current_rules.number:
                delivery = rules_delivery.Delivery(state.current_rules, deployed=False, slot=rules.active_slot)
                s.record(state, [rules_delivery.activation_event(rules_delivery.Activation("active", 0.0), delivery)])
        return
    if pending is not None:
        s.out.step(f"Revision {pending} has no recorded outcome (interrupted): applying it now")
    else:
        why = "its rules on the service differ" if rules_drift and not plan.actions else "drift repaired"
        s.out.step(f"{name} drifted from its journal ({why}): converging")
        state = s.record(state, [ev.NewEvent(ev.CONFIG_PUBLISHED, {"cause": f"reconcile: {why}"})])
        pending = state.version
    publish_or_restore(s, state, secrets, pending)


def _rules_on_service(s: Services, state: InstanceState):
    """The service's rules, when the journal has some to compare them with."""
    if state.current_rules is None:
        return None
    container = s.docker.web_container(state.name)
    return rules_delivery.service_rules(s, state, container.id)


def _remove_interrupted_deploy_containers(s: Services, name: str, dry_run: bool) -> None:
    """A command killed during Dokku's deploy leaves the new container behind; it would keep
    restarting and contend for the replication lock with whatever converges next."""
    for container in s.docker.interrupted_deploy_containers(name):
        if dry_run:
            s.out.step(f"Would remove {container}, left by the interrupted deploy")
        else:
            s.docker.remove_container(container)
            s.out.step(f"Removed {container}, left by the interrupted deploy")


def _finish_interrupted(s: Services, state: InstanceState, version: int, type_: str, dry_run: bool) -> None:
    name = state.name
    events = s.journal.load(name)
    event = next(e for e in events if e.version == version)
    link_before = project(name, events, until=version - 1).link
    s.out.step(f"Revision {version} ({type_}) has no recorded outcome (interrupted): finishing it")
    if dry_run:
        return

    def finish(_: InstanceState) -> None:
        if type_ == ev.BACKEND_UNLINKED:
            apply_unlink(
                s, name, event.payload["backend"], state.last_postgres_service, state, True,
                bool(event.payload.get("slots_kept")), link_before.url if link_before else None,
            )
        else:
            apply_destroy(s, state)

    settle(s, state, version, finish)
    s.out.step(f"Revision {version} completed")


def follow_url(s: Services, name: str, cause: str, why: str, dry_run: bool = False) -> None:
    """Give the backend the instance's current URL if its POWERSYNC_URL is still the one the
    plugin gave it (a hand-set value is left alone), and record the new URL. Caller holds the lock."""
    state = s.load(name)
    if not state.live or state.link is None or not s.dokku.app_exists(state.link.backend):
        return
    url = instance_url(s, name)
    backend = state.link.backend
    if url is None or url == state.link.url:
        return
    points_here = s.dokku.config(backend).get("POWERSYNC_URL") == state.link.url
    if dry_run:
        if points_here:
            s.print_plan(Plan((Action(Kind.SET_BACKEND_URL, backend, detail=url, restarts=True),)))
        return
    if points_here:
        s.out.step(f"Setting POWERSYNC_URL={url} on {backend} (restarts it): {why}")
        s.dokku.config_set(backend, {"POWERSYNC_URL": url}, restart=True)
    else:
        s.out.warn(
            f"{name} now serves {url}, but POWERSYNC_URL on {backend} was set by hand (it is not {state.link.url}): "
            f"left alone; `dokku config:set {backend} POWERSYNC_URL={url}` if clients should follow"
        )
    s.record(state, [ev.NewEvent(ev.URL_CHANGED, {"url": url, "cause": cause})])
