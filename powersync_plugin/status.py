"""What an instance is doing now (`status`), and development tokens signed as its backend signs."""
from __future__ import annotations

import base64
import time
from typing import Optional

from powersync_plugin import access, status_all
from powersync_plugin.adapters.powersync_api import PowerSyncApi, summarize_diagnostics
from powersync_plugin.backend import backend_values
from powersync_plugin.core import config_render, decisions, derive
from powersync_plugin.core.errors import DomainError
from powersync_plugin.services import Services


def status(s: Services, name: str) -> dict:
    s.require_local_scheduler(name)
    state = s.load(name)
    decisions.require_live(state)
    container = s.docker.web_container(name)
    result: dict = {"name": name, "running": bool(container and container.running)}
    result["image"] = container.image if container else "-"
    base = s.docker.image(f"{state.image}:{state.image_version}")
    result["image-digest"] = base.digest if base else "-"
    if container and container.running:
        api = PowerSyncApi(s.docker, container.id, state.api_token)
        result["ready"] = api.readiness().ok
        diagnostics = api.diagnostics(rules_content=state.current_rules is not None)
        result.update(summarize_diagnostics(diagnostics) if diagnostics else {"diagnostics": "unavailable (admin API)"})
        if state.current_rules is not None and state.link:
            result["rules"] = _rules_on_service(diagnostics, state)
    else:
        result["ready"] = False
    if state.link:
        desired = config_render.render(config_render.desired_config(state))
        deployed = s.dokku.config(name).get("POWERSYNC_CONFIG_B64", "")
        result["config-drift"] = base64.b64encode(desired.encode()).decode() != deployed
        if state.link.postgres_service:
            slots = s.source_db.instance_slots(state.link.postgres_service, state.slot_prefix)
            result["slots"] = [{"slot": slot.name, "active": slot.active, "retained_wal": slot.retained_wal} for slot in slots]
    result["stale"] = state.stale_cause or "-"
    return result


def _rules_on_service(diagnostics: Optional[dict], state) -> str:
    """The journal's current revision against what the service serves and deploys, compared as
    `status --all` compares them (status_all.rules_on_service), from the same diagnostics."""
    revision = state.current_rules
    if diagnostics is None:
        return f"r{revision.number} (service unavailable: the admin API did not answer)"
    verdict = status_all.rules_on_service(diagnostics, revision.content)
    if verdict == status_all.DEPLOYING:
        serving = f"r{state.rules_active}" if state.rules_active else "the previous rules"
        return f"r{revision.number} deploying (reprocessing; {serving} serving)"
    if verdict == status_all.ACTIVE and summarize_diagnostics(diagnostics)["deploying-rules"] is None:
        return f"r{revision.number} active"
    if verdict == status_all.NONE_ACTIVE:
        return f"r{revision.number} not active yet (the service has no rules active; the diagnostics show what deploys)"
    if verdict == status_all.UNKNOWN:
        return f"r{revision.number} (the service did not report its rules' content)"
    return f"r{revision.number} not on the service (drift: `dokku powersync:reconcile {state.name}`)"


def token(s: Services, name: str, subject: str, ttl: int, claims: dict[str, str]) -> str:
    state = s.load(name)
    decisions.require_live(state)
    if state.link is None:
        raise DomainError(f"{name} is not linked: a token is signed with the backend's SECRET_KEY")
    access.require_app(s, "powersync:token", state.link.backend, f"{name}'s tokens are signed with {state.link.backend}'s SECRET_KEY")
    secret_key, _ = backend_values(state.link.backend, s.dokku.config(state.link.backend))
    now = int(time.time())
    payload = {**claims, "sub": subject, "aud": state.audience[0], "iat": now, "exp": now + ttl}
    return derive.sign_hs256(secret_key.encode("utf-8"), payload, state.kid)
