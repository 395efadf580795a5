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
INSTANCE_PORTS = ("http:80:8080",)


class Kind(enum.Enum):
    CREATE_APP = "create app"
    SET_PORTS = "set ports"
    SET_MEMORY = "set memory limit"
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


LEGEND = {
    Kind.CREATE_APP: "+",
    Kind.DESTROY_APP: "-",
    Kind.DROP_STORAGE: "-",
    Kind.DROP_SLOTS: "-",
    Kind.TEARDOWN: "-",
    Kind.UNSET_CONFIG: "-",
    Kind.UNMOUNT: "-",
    Kind.UNSET_BACKEND_URL: "-",
    Kind.UNLINK_DATABASE: "-",
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
    if tuple(observed.ports) != INSTANCE_PORTS:
        # domains:set clears the ports map; a plugin that owns an app's ports re-asserts them.
        actions.append(Action(Kind.SET_PORTS, app, detail=" ".join(INSTANCE_PORTS)))
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
