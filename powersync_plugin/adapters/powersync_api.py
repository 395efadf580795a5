"""The PowerSync Service's HTTP surface as the plugin uses it: probes, admin API, sync stream.

Requests run inside the instance container (see DockerEngine.http).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from powersync_plugin.adapters.docker_engine import DockerEngine, HttpResult


@dataclass(frozen=True)
class Deployment:
    """The service's answer to a rules deploy: accepted (a new version on `slot`), or refused with
    its code (PSYNC_R0001: the rules do not parse; PSYNC_S4105: the config still carries rules)."""

    accepted: bool
    slot: str = ""
    code: str = ""
    reason: str = ""


@dataclass(frozen=True)
class ServiceRules:
    """`GET /api/sync-rules/v1/current`: the active rules and the ones still deploying."""

    active: Optional[str]  # None: no rules active yet (PSYNC_S4104)
    active_slot: str = ""
    deploying: Optional[str] = None
    deploying_slot: str = ""


class ServiceUnreachable(Exception):
    """The admin API did not answer usefully (not running, wrong token, a 5xx)."""


@dataclass(frozen=True)
class Validation:
    valid: bool
    errors: tuple[str, ...]
    reachable: bool = True


class PowerSyncApi:
    def __init__(self, docker: DockerEngine, container_id: str, api_token: str):
        self.docker = docker
        self.container_id = container_id
        self.api_token = api_token

    def readiness(self, timeout: float = 3) -> HttpResult:
        return self.docker.http(self.container_id, "GET", "/probes/readiness", timeout=timeout)

    def validate_rules(self, content: str) -> Validation:
        result = self.docker.http(
            self.container_id,
            "POST",
            "/api/sync-rules/v1/validate",
            headers={"Authorization": f"Bearer {self.api_token}", "Content-Type": "application/yaml"},
            body=content,
            timeout=15,
        )
        if result.status == 0 or result.status >= 500 or result.status in (401, 403, 404):
            return Validation(valid=False, errors=(result.error or f"HTTP {result.status}",), reachable=False)
        payload = result.json() or {}
        data = payload.get("data", payload) if isinstance(payload, dict) else {}
        errors = tuple(_error_text(item) for item in data.get("errors", []) if _is_fatal(item))
        valid = bool(data.get("valid", not errors)) and not errors
        return Validation(valid=valid, errors=errors)

    def deploy_rules(self, content: str) -> Deployment:
        """Deploy rules through the service's own API: it parses them (nothing changes when they
        are refused), keeps the old rules serving, and activates the new ones once replicated."""
        result = self._admin("POST", "/api/sync-rules/v1/deploy", json.dumps({"content": content}), timeout=30)
        payload = result.json() if result.status else None
        if result.ok and isinstance(payload, dict):
            return Deployment(accepted=True, slot=str((payload.get("data") or {}).get("slot_name", "")))
        error = payload.get("error") if isinstance(payload, dict) else None
        if result.status == 422 and isinstance(error, dict):
            reason = error.get("details") or error.get("description") or "refused"
            return Deployment(accepted=False, code=str(error.get("code", "")), reason=str(reason))
        raise ServiceUnreachable(result.error or f"HTTP {result.status}")

    def current_rules(self) -> ServiceRules:
        result = self._admin("GET", "/api/sync-rules/v1/current", None, timeout=10)
        payload = result.json() if result.status else None
        error = payload.get("error") if isinstance(payload, dict) else None
        if result.status == 422 and isinstance(error, dict) and error.get("code") == "PSYNC_S4104":
            return ServiceRules(active=None)
        if not result.ok or not isinstance(payload, dict):
            raise ServiceUnreachable(result.error or f"HTTP {result.status}")
        data = payload.get("data") or {}
        current, following = data.get("current") or {}, data.get("next") or {}
        return ServiceRules(
            active=current.get("content"),
            active_slot=str(current.get("slot_name", "")),
            deploying=following.get("content"),
            deploying_slot=str(following.get("slot_name", "")),
        )

    def _admin(self, method: str, path: str, body: Optional[str], timeout: float) -> HttpResult:
        headers = {"Authorization": f"Bearer {self.api_token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self.docker.http(self.container_id, method, path, headers=headers, body=body, timeout=timeout)

    def diagnostics(self, rules_content: bool = False) -> Optional[dict]:
        """`rules_content`: the active and deploying rules carry their `content` (the service's
        `sync_rules_content` request flag), to compare with the journal's bytes."""
        result = self.docker.http(
            self.container_id,
            "POST",
            "/api/admin/v1/diagnostics",
            headers={"Authorization": f"Bearer {self.api_token}", "Content-Type": "application/json"},
            body=json.dumps({"sync_rules_content": True} if rules_content else {}),
            timeout=10,
        )
        return result.json() if result.ok else None

    def open_sync_stream(self, token: str) -> HttpResult:
        """Start a sync stream as a client would and read up to the first complete checkpoint."""
        return self.docker.http(
            self.container_id,
            "POST",
            "/sync/stream",
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
            body=json.dumps({"buckets": [], "include_checksum": True, "raw_data": True}),
            timeout=15,
            stop_at="checkpoint_complete",
        )


def _is_fatal(item) -> bool:
    return not isinstance(item, dict) or item.get("level", "fatal") in ("fatal", "error")


def _error_text(item) -> str:
    if not isinstance(item, dict):
        return str(item)
    message = item.get("message", str(item))
    location = item.get("location") or {}
    if isinstance(location, dict) and "start_offset" in location:
        return f"{message} (at offset {location['start_offset']})"
    return message


def summarize_diagnostics(payload) -> dict:
    """The parts of /api/admin/v1/diagnostics an operator acts on, read defensively (the shape
    has grown across service versions)."""
    data = payload.get("data", payload) if isinstance(payload, dict) else {}

    def rules(section) -> dict:
        if not isinstance(section, dict):
            return {"slot": "-", "lag_bytes": None, "errors": []}
        connection = (section.get("connections") or [{}])[0] or {}
        errors = [e.get("message", str(e)) for e in section.get("errors") or [] if isinstance(e, dict)]
        return {
            "slot": connection.get("slot_name", "-"),
            "lag_bytes": connection.get("replication_lag_bytes"),
            "initial_replication_done": connection.get("initial_replication_done"),
            "errors": errors,
        }

    connections = data.get("connections") or []
    connection_errors = [
        e.get("message", str(e)) for c in connections if isinstance(c, dict) for e in c.get("errors") or [] if isinstance(e, dict)
    ]
    return {
        "source-connected": all(bool(c.get("connected")) for c in connections if isinstance(c, dict)) if connections else False,
        "active-rules": rules(data.get("active_sync_rules")),
        "deploying-rules": rules(data.get("deploying_sync_rules")) if data.get("deploying_sync_rules") else None,
        "replication-errors": connection_errors,
    }


def slots_in_use(payload) -> set[str]:
    """The replication slots a running instance reports as its own (active and deploying rules):
    the proof that a slot under a shared prefix belongs to this instance."""
    data = payload.get("data", payload) if isinstance(payload, dict) else {}
    slots = set()
    for section in (data.get("active_sync_rules"), data.get("deploying_sync_rules")):
        if isinstance(section, dict):
            for connection in section.get("connections") or []:
                if isinstance(connection, dict) and isinstance(connection.get("slot_name"), str):
                    slots.add(connection["slot_name"])
    return slots
