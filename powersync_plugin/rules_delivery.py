"""Rules reach a running instance through PowerSync's own deploy API, not through its config.

`POST /api/sync-rules/v1/deploy` parses the rules with the service's own parser (a refusal
changes nothing), keeps the old rules serving while the new ones replicate, and activates them
atomically: no restart. `GET /api/sync-rules/v1/current` says which rules are active and which
are still deploying, so the journal's current revision can be compared with the service's.

The service starts a new version (a full reprocess) on every deploy, even of the rules it
already runs: rules are deployed only when the service's differ from the journal's.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Optional

from powersync_plugin import settings
from powersync_plugin.adapters.docker_engine import readable_log
from powersync_plugin.adapters.powersync_api import PowerSyncApi, ServiceRules, ServiceUnreachable
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.state import InstanceState, RulesRevision
from powersync_plugin.services import Services

# The snapshot progress line the service logs after each chunk (WalStream.ts at v1.25.0):
# `N/~M`, or `N/?` while the table has no estimate (reltuples -1: never vacuumed nor analyzed,
# SourceTable.formatSnapshotProgress). The real image logs JSON by default (NODE_ENV=production),
# where the table's quotes are escaped: the name is only a key here.
_PROGRESS = re.compile(r'Replicating (\S+) (\d+)/(?:~?(\d+)|\?)')


@dataclass(frozen=True)
class Delivery:
    """What delivering a revision did: `deployed` on `slot`, or found it already there."""

    revision: RulesRevision
    deployed: bool
    slot: str = ""
    started: float = 0.0  # time.time() of the deploy, for the progress read from the logs


@dataclass(frozen=True)
class Activation:
    # active | deploying (the wait ended first) | retrying (the service reports an error it
    # retries) | failed (the revision no longer deploys: another deploy replaced it)
    state: str
    seconds: float
    reason: str = ""


def service_rules(s: Services, state: InstanceState, container_id: str) -> ServiceRules:
    """The service's active and deploying rules. Until some rules are active, /current answers
    PSYNC_S4104 and hides the ones deploying: the diagnostics (with their content) show them."""
    api = PowerSyncApi(s.docker, container_id, state.api_token)
    try:
        service = api.current_rules()
    except ServiceUnreachable as exc:
        raise DomainError(f"{state.name}'s admin API did not answer /api/sync-rules/v1/current ({exc})") from None
    if service.active is not None:
        return service
    deploying = _section(api.diagnostics(rules_content=True), "deploying_sync_rules")
    if isinstance(deploying.get("content"), str):
        return ServiceRules(active=None, deploying=deploying["content"], deploying_slot=_slot(deploying))
    return service


def in_sync(service: ServiceRules, revision: RulesRevision) -> bool:
    return service.active == revision.content and service.deploying in (None, revision.content)


def describe_drift(service: ServiceRules, revision: RulesRevision) -> str:
    if service.deploying == revision.content:
        return f"r{revision.number} is still deploying"
    if service.active is None:
        return "the service has no rules active"
    return f"the service's rules differ from r{revision.number}"


def deploy(s: Services, state: InstanceState, container_id: str, revision: RulesRevision) -> Delivery:
    """Deploy `revision` unless the service already runs it or is deploying it."""
    service = service_rules(s, state, container_id)
    if service.active == revision.content and service.deploying is None:
        return Delivery(revision, deployed=False, slot=service.active_slot)
    if service.deploying == revision.content:
        s.out.step(f"r{revision.number} is already deploying on {state.name} (slot {service.deploying_slot})")
        return Delivery(revision, deployed=False, slot=service.deploying_slot, started=time.time())
    started = time.time()
    try:
        answer = PowerSyncApi(s.docker, container_id, state.api_token).deploy_rules(revision.content)
    except ServiceUnreachable as exc:
        raise DomainError(f"{state.name}'s admin API did not answer the rules deploy ({exc})") from None
    if not answer.accepted and answer.code == "PSYNC_S4105":
        raise DomainError(
            f"{state.name} still takes its rules from its config ({answer.code}: {answer.reason}); "
            f"`dokku powersync:reconcile {state.name}` publishes the config without them"
        )
    if not answer.accepted:
        raise DomainError(f"The instance rejected r{revision.number} ({answer.code}): {answer.reason}")
    s.out.step(f"Deployed r{revision.number} through the service's API (slot {answer.slot}, no restart)")
    return Delivery(revision, deployed=True, slot=answer.slot, started=started)


def follow(s: Services, state: InstanceState, container_id: str, delivery: Delivery) -> Activation:
    """Wait until the service serves `delivery`'s revision, reporting the reprocessing progress.
    The old rules keep serving until then. A fatal error the service reports for the deploying
    rules, other than a table's (see _fatal_errors), is one it retries: the real 1.25.0 retries a
    failed replication every 30 s and never gives up, and keeps listing the error until a retry
    copies rows, also after its cause is gone (tests/standin/README.md, "Slot errors"). So the
    wait goes on, and ends as `retrying` only once the error has lasted
    POWERSYNC_RULES_RETRY_WAIT (longer than one retry). A wait longer than
    POWERSYNC_RULES_WAIT_TIMEOUT ends as `deploying` (the service carries on; `status` follows it).
    Only a revision that no longer deploys (another deploy replaced it) has `failed`."""
    revision = delivery.revision
    timeout = settings.seconds("POWERSYNC_RULES_WAIT_TIMEOUT", 3600)
    interval = settings.seconds("POWERSYNC_RULES_PROGRESS_SECONDS", 5)
    retry_wait = settings.seconds("POWERSYNC_RULES_RETRY_WAIT", 60)
    api = PowerSyncApi(s.docker, container_id, state.api_token)
    started = time.monotonic()
    last_report, reported, gone = started, "", False
    erring_since: Optional[float] = None  # since when the deploying rules show an error
    try:
        while True:
            service = service_rules(s, state, container_id)
            elapsed = time.monotonic() - started
            if in_sync(service, revision):
                s.out.step(f"r{revision.number} is active on {state.name} ({elapsed:.1f}s)")
                active = _section(api.diagnostics(), "active_sync_rules")
                for message in _fatal_messages(active):  # e.g. a table outside the publication
                    s.out.warn(f"r{revision.number} is active, but the service reports: {message}")
                return Activation("active", elapsed)
            if elapsed < 2 and service.deploying == revision.content:
                # Small tables activate within a second: /current alone says when, and through the
                # command's relay (exec_channel.py) a look costs a few milliseconds.
                time.sleep(0.1)
                continue
            if service.deploying != revision.content:
                # Before any rules are active the answer takes two reads (/current, then the
                # diagnostics): the rules may have become active between them. Only a second look
                # in a row that finds them gone is a verdict.
                if gone:
                    return Activation("failed", elapsed, _superseded(service, revision))
                gone = True
                continue
            gone = False
            diagnostics = api.diagnostics()
            fatal = _fatal_errors(diagnostics)
            if not fatal:
                erring_since = None
            elif erring_since is None:
                erring_since = time.monotonic()
                s.out.step(f"The service reports an error for r{revision.number} and retries it: "
                           f"{_with_cause(s, container_id, fatal[0], delivery.started, delivery.slot)}")
            elif time.monotonic() - erring_since >= retry_wait:
                return Activation("retrying", elapsed, _with_cause(s, container_id, fatal[0], delivery.started, delivery.slot))
            if elapsed >= timeout:
                return Activation("deploying", elapsed)
            if time.monotonic() - last_report >= interval:
                line = (f"waiting for the service's next attempt at r{revision.number}: {elapsed:.0f}s elapsed; "
                        "the previous rules keep serving") if fatal else \
                    progress_line(s, container_id, diagnostics, delivery.started, elapsed)
                if line != reported:
                    s.out.step(line)
                    reported = line
                last_report = time.monotonic()
            time.sleep(0.5)
    finally:
        s.waited += time.monotonic() - started


def progress_line(s: Services, container_id: str, diagnostics: Optional[dict], since: float, elapsed: float) -> str:
    """Tables from the diagnostics, rows from the progress lines the service logs."""
    deploying = _section(diagnostics, "deploying_sync_rules")
    connection = (deploying.get("connections") or [{}])[0] if deploying else {}
    tables = len(connection.get("tables") or [])
    rows: dict[str, tuple[int, Optional[int]]] = {}
    for match in _PROGRESS.finditer(s.docker.logs_since(container_id, since)):
        rows[match.group(1)] = (int(match.group(2)), int(match.group(3)) if match.group(3) else None)
    parts = [f"reprocessing: {tables} table{'s' if tables != 1 else ''}"]
    if rows:
        done, totals = sum(r[0] for r in rows.values()), [r[1] for r in rows.values()]
        total = f"~{sum(totals):,}" if None not in totals else "?"
        parts.append(f"{done:,}/{total} rows replicated")
    lag = connection.get("replication_lag_bytes")
    if isinstance(lag, int):
        parts.append(f"slot lag {lag:,} bytes")
    parts.append(f"{elapsed:.0f}s elapsed; the previous rules keep serving")
    return ", ".join(parts)


def activation_event(activation: Activation, delivery: Delivery) -> Optional[ev.NewEvent]:
    revision = delivery.revision
    if activation.state == "active":
        payload = {"revision": revision.number, "digest": revision.digest, "slot": delivery.slot,
                   "seconds": round(activation.seconds, 1)}
        return ev.NewEvent(ev.RULES_ACTIVATED, payload)
    if activation.state == "failed":
        return ev.NewEvent(ev.RULES_ACTIVATION_FAILED, {"revision": revision.number, "digest": revision.digest,
                                                        "reason": activation.reason})
    return None


def ensure(s: Services, state: InstanceState, container_id: str, wait: bool = True) -> Optional[Delivery]:
    """After a publish: the service runs the journal's current revision, or is made to (link, a
    drift, an instance moving off config-borne rules). Observations go to `s.observations`, so the
    change being settled records them after its outcome. A failed activation fails the publish."""
    revision = state.current_rules
    if revision is None or state.link is None:
        return None
    delivery = deploy(s, state, container_id, revision)
    if not delivery.deployed and not delivery.started:
        if state.rules_active != revision.number:
            s.observations.append(activation_event(Activation("active", 0.0), delivery))
        return delivery
    if not wait:
        return delivery
    activation = follow(s, state, container_id, delivery)
    event = activation_event(activation, delivery)
    if activation.state == "failed":
        raise DomainError(f"r{revision.number} did not become active on {state.name}: {activation.reason}")
    if event is not None:
        s.observations.append(event)
    elif activation.state == "deploying":
        s.out.warn(f"r{revision.number} is still deploying after {activation.seconds:.0f}s: `dokku powersync:status {state.name}` follows it")
    elif activation.state == "retrying":  # the publish itself is done: nothing to restore
        s.rules_retrying = retrying_text(state, activation, revision)
        s.out.warn(s.rules_retrying)
    return delivery


def retrying_text(state: InstanceState, activation: Activation, revision: RulesRevision) -> str:
    """The revision stays the journal's current one, deploying: the service activates it by itself
    once the cause is gone, and `reconcile` records that."""
    serving = f"r{state.rules_active}" if state.rules_active else "the previous rules"
    return (f"r{revision.number} is deploying on {state.name}, but the service cannot replicate it yet and retries: "
            f"{activation.reason}\n{serving} keeps serving; r{revision.number} activates once the cause is fixed "
            f"(the service retries about every 30 s). `dokku powersync:status {state.name}` shows it, "
            f"`dokku powersync:reconcile {state.name}` records it")


def _superseded(service: ServiceRules, revision: RulesRevision) -> str:
    if service.deploying is None:
        return f"r{revision.number} is no longer deploying and is not the active rules (another deploy replaced it)"
    return f"other rules are deploying on the service (slot {service.deploying_slot}), not r{revision.number}"


def _section(diagnostics: Optional[dict], key: str) -> dict:
    data = diagnostics.get("data", diagnostics) if isinstance(diagnostics, dict) else {}
    section = data.get(key) if isinstance(data, dict) else None
    return section if isinstance(section, dict) else {}


def _slot(section: dict) -> str:
    connection = (section.get("connections") or [{}])[0]
    return str(connection.get("slot_name", "")) if isinstance(connection, dict) else ""


# The line after a replication error that names what Postgres said (WalStream at v1.25.0):
# `[slot] cause all replication slots are in use`; the diagnostics carry only
# `[PSYNC_S1120] Postgres error while replicating`.
_CAUSE = re.compile(r"\[([^\]\s]+)\] cause (.+)$", re.MULTILINE)
# The service logs the cause once per attempt, 30 s apart (and keeps listing the error between
# attempts): a command that finds rules already deploying looks back over a few attempts.
_CAUSE_LOOKBACK = 180


def _with_cause(s: Services, container_id: str, message: str, since: float, slot: str = "") -> str:
    """`message` with the cause the service last logged for `slot` (any slot when not known;
    slot names are unique per rules version, so older lines of other versions do not match)."""
    lines = _CAUSE.findall(readable_log(s.docker.logs_since(container_id, since - _CAUSE_LOOKBACK if slot else since)))
    causes = [cause for logged, cause in lines if not slot or logged == slot]
    return f"{message} ({causes[-1].strip()})" if causes else message


def _fatal_messages(section: dict) -> list[str]:
    return [str(item.get("message", item)) for item in section.get("errors") or []
            if isinstance(item, dict) and item.get("level") == "fatal"]


def _fatal_errors(diagnostics: Optional[dict]) -> list[str]:
    """The deploying rules' fatal errors that keep them from activating for now.

    A table's own fatal error (outside the publication, no replication id, not readable) does not:
    the real 1.25.0 service copies the other tables and activates the rules, the error staying in
    the active rules' diagnostics (observed on the image built from source). The others are the
    replication's own (e.g. a slot it cannot create), which the service retries (see follow)."""
    deploying = _section(diagnostics, "deploying_sync_rules")
    connections = [c for c in deploying.get("connections") or [] if isinstance(c, dict)]
    tables = [t for c in connections for t in c.get("tables") or [] if isinstance(t, dict)]
    of_tables = {str(e.get("message")) for t in tables for e in t.get("errors") or [] if isinstance(e, dict)}
    return [message for message in _fatal_messages(deploying) if message not in of_tables]
