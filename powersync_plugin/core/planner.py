"""The planner: desired versus observed state in, a list of actions out. Pure.

A plan is a value: it can be printed (`--dry-run`) and compared in tests without Docker or Dokku.
Only the last write of a batch restarts the app (a failed write mid-sequence must never leave a
half-configured container running).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping, Optional

# Keys that would silently override the rules the plugin publishes.
RULES_OVERRIDES = ("POWERSYNC_SYNC_CONFIG_B64", "POWERSYNC_SYNC_RULES_B64")
# The one mapping the plugin owns; every other mapping (https:443 from certs:add or letsencrypt,
# anything added by hand) is Dokku's or the operator's and is kept.
INSTANCE_PORTS = ("http:80:8080",)
# What Dokku's ports plugin maps on post-certs-update next to http:80:8080.
TLS_PORT = "https:443:8080"


class Kind(enum.Enum):
    CREATE_APP = "create app"
    ADD_PORTS = "add ports"
    REMOVE_PORTS = "remove ports"
    SET_MEMORY = "set memory limit"
    ADD_DOCKER_OPTION = "add deploy docker option"
    REMOVE_DOCKER_OPTION = "remove deploy docker option"
    UNSET_CONFIG = "unset config"
    SET_CONFIG = "set config"
    DEPLOY_IMAGE = "deploy image"
    RESTART = "restart"
    STOP = "stop"
    UNMOUNT = "unmount storage"
    LINK_DATABASE = "link database"
    UNLINK_DATABASE = "unlink database"
    CREATE_STORAGE = "create storage database"
    DROP_STORAGE = "drop storage database"
    TEARDOWN = "teardown"
    DROP_SLOTS = "drop replication slots"
    DESTROY_APP = "destroy app"
    SET_BACKEND_URL = "set backend POWERSYNC_URL"
    UNSET_BACKEND_URL = "unset backend POWERSYNC_URL"
    SET_WAL_LEVEL = "set wal_level=logical (ALTER SYSTEM)"  # link --configure-source, then a RESTART
    DEPLOY_RULES = "deploy rules"  # through the service's API: no restart
    SET_DOMAINS = "set domains"  # import: the exported domains
    RECORD_HISTORY = "record history"  # import: the exported revisions, then the import
    LINK_BACKEND = "link backend"  # import --link: powersync:link, which plans for itself
    CREATE_ROLE = "create source role"  # link --source-role dedicated
    DROP_ROLE = "drop source role"


LEGEND = {
    Kind.CREATE_APP: "+",
    Kind.DESTROY_APP: "-",
    Kind.DROP_STORAGE: "-",
    Kind.DROP_SLOTS: "-",
    Kind.TEARDOWN: "-",
    Kind.UNSET_CONFIG: "-",
    Kind.UNMOUNT: "-",
    Kind.UNSET_BACKEND_URL: "-",
    Kind.REMOVE_PORTS: "-",
    Kind.REMOVE_DOCKER_OPTION: "-",
    Kind.UNLINK_DATABASE: "-",
    Kind.DROP_ROLE: "-",
    Kind.RESTART: "~",
    Kind.DEPLOY_IMAGE: "~",
    Kind.STOP: "~",
    Kind.SET_WAL_LEVEL: "~",
}


@dataclass(frozen=True)
class Action:
    kind: Kind
    app: str
    keys: tuple[str, ...] = ()
    detail: str = ""
    restarts: bool = False

    def describe(self) -> str:
        symbol = LEGEND.get(self.kind, "+")
        parts = [f"{symbol} {self.kind.value} on {self.app}"]
        if self.keys:
            parts.append("(" + ", ".join(self.keys) + ")")
        if self.detail:
            parts.append(self.detail)
        if self.restarts:
            parts.append("[restarts]")
        return " ".join(parts)


@dataclass(frozen=True)
class Observed:
    """What the world shows for an instance app, read before planning."""

    env: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[str, ...] = ()
    tls: bool = False  # the app has a certificate (certs:report --ssl-enabled), whoever installed it
    deployed_image: Optional[str] = None
    running: bool = False


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]

    @property
    def restarts(self) -> int:
        return sum(1 for action in self.actions if action.restarts)

    def summary(self) -> str:
        changes = sum(1 for action in self.actions if not action.restarts)
        return f"Plan: {changes} to change, {self.restarts} to restart."

    def lines(self) -> list[str]:
        return [action.describe() for action in self.actions] + [self.summary()]


def _scheme_host(mapping: str) -> str:
    return ":".join(mapping.split(":")[:2])


def missing_ports(observed: Observed) -> tuple[str, ...]:
    """The mappings the instance needs that the map lacks: http:80:8080, and with a certificate
    https:443:8080 when nothing serves https on 443 (as Dokku's post-certs-update adds it; an
    emptied map lost it)."""
    needed = list(INSTANCE_PORTS)
    if observed.tls and not any(_scheme_host(m) == "https:443" for m in observed.ports):
        needed.append(TLS_PORT)
    return tuple(m for m in needed if m not in observed.ports)


def plan_publish(
    app: str, desired_env: Mapping[str, str], image: str, observed: Observed,
    remove_keys: tuple[str, ...] = (), unmounts: tuple[str, ...] = (),
) -> Plan:
    """Bring an instance app to `desired_env` running `image`, with at most one restart.

    `remove_keys` and `unmounts` are leftovers of a hand-made deployment (adoption) that the
    first managed publish drops, inside the same single restart.
    """
    actions: list[Action] = []
    for mount in unmounts:
        actions.append(Action(Kind.UNMOUNT, app, detail=mount))
    missing = missing_ports(observed)
    if missing:
        # domains:set clears the ports map: re-add what is missing, never replace the map (a
        # `ports:set` would drop the https mapping a certificate added). Dokku refuses two maps
        # on one scheme:host-port, so another http:80 target goes first.
        taken = {_scheme_host(m) for m in missing}
        conflicting = tuple(m for m in observed.ports if _scheme_host(m) in taken)
        if conflicting:
            actions.append(Action(Kind.REMOVE_PORTS, app, detail=" ".join(conflicting)))
        actions.append(Action(Kind.ADD_PORTS, app, detail=" ".join(missing)))
    stale = tuple(key for key in RULES_OVERRIDES + tuple(remove_keys) if key in observed.env and key not in desired_env)
    stale = tuple(dict.fromkeys(stale))
    if stale:
        actions.append(Action(Kind.UNSET_CONFIG, app, keys=stale))
    changed = tuple(sorted(key for key, value in desired_env.items() if observed.env.get(key) != value))
    image_changes = observed.deployed_image != image
    if image_changes or not observed.running:
        if changed:
            actions.append(Action(Kind.SET_CONFIG, app, keys=changed))
        actions.append(Action(Kind.DEPLOY_IMAGE, app, detail=image, restarts=True))
    elif changed:
        actions.append(Action(Kind.SET_CONFIG, app, keys=changed, restarts=True))
    elif stale or unmounts:
        actions.append(Action(Kind.RESTART, app, restarts=True))
    return Plan(tuple(actions))
