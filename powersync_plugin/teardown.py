"""What an instance leaves on its source server (replication slots, storage database), removed
when it is unlinked or destroyed; what cannot be removed is returned as a Leftover and said."""
from __future__ import annotations

from typing import Optional

from powersync_plugin.adapters.powersync_api import PowerSyncApi, slots_in_use
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.state import InstanceState
from powersync_plugin.services import Services
from powersync_plugin.source_database import Leftover, drop_database_command, drop_slot_command


def proven_slots(s: Services, state: InstanceState) -> frozenset[str]:
    """The slots the running instance reports as its own; read before it is stopped, since
    for an adopted instance they are the only proof of which slots are its own."""
    container = s.docker.web_container(state.name)
    if not state.adopted_from or container is None or not container.running:
        return frozenset()
    diagnostics = PowerSyncApi(s.docker, container.id, state.api_token).diagnostics()
    return frozenset(slots_in_use(diagnostics)) if diagnostics else frozenset()


def run_teardown(s: Services, name: str, state: InstanceState, service: Optional[str], proven: frozenset[str]) -> None:
    s.out.step(f"Tearing down {name}'s replication slots and storage (teardown TEARDOWN)")
    result = s.dokku.run_oneoff(name, "teardown", "TEARDOWN")
    if result.returncode != 0:
        tail = s.out.redactor.text((result.stdout + result.stderr).strip())[-600:]
        raise DomainError(f"teardown of {name} failed (exit {result.returncode}):\n{tail}")
    if service:
        require_dropped(s, drop_slots(s, state, service, proven))


def drop_slots(s: Services, state: InstanceState, service: str, proven: frozenset[str] = frozenset()) -> list[Leftover]:
    """Drop whatever slot of this instance is left (a forgotten slot retains WAL until the disk
    fills); returns what is left.

    A created instance's prefix is its own, so every slot PowerSync named under it is. An
    adopted one may share its prefix (PowerSync's default `powersync_`) with other hand-made
    deployments on the same server: only the slots it reported in use are dropped.
    """
    left = []
    for slot in s.source_db.instance_slots(service, state.slot_prefix):
        what, command = f"slot {slot.name} on {service}", drop_slot_command(service, slot.name)
        if state.adopted_from and slot.name not in proven:
            reason = (
                f"left, as it cannot be proven to be {state.name}'s (the prefix {state.slot_prefix} "
                "may be shared by a hand-made deployment there)"
            )
            left.append(Leftover(what, reason, command, unproven=True))
            continue
        s.out.step(f"Dropping replication slot {slot.name}")
        problem = s.source_db.drop_slot(service, slot.name)
        if problem:
            left.append(Leftover(what, problem, command))
    return left


def drop_storage_database(s: Services, state: InstanceState, service: str) -> list[Leftover]:
    if not state.storage_database:
        return []
    s.out.step(f"Dropping storage database {state.storage_database}")
    problem = s.source_db.drop_database(service, state.storage_database)
    if problem:
        what = f"storage database {state.storage_database} on {service}"
        return [Leftover(what, problem, drop_database_command(service, state.storage_database))]
    return []


def require_dropped(s: Services, left: list[Leftover]) -> None:
    """What the instance owns must go; what it cannot prove is its own stays, and is said."""
    for item in left:
        if item.unproven:
            s.out.warn(str(item))
    failed = [item for item in left if not item.unproven]
    if failed:
        raise DomainError("Could not drop:\n" + "\n".join(f"  - {item}" for item in failed))
