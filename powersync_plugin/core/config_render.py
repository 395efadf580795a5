"""The one place that renders the PowerSync Service configuration.

The config is written as YAML in flow style (JSON plus `!env` tags): the rules travel as one
double-quoted scalar, which reproduces their text exactly. PowerSync detects a rules change by
exact string equality, so a block scalar that lost a trailing space or newline would start a full
reprocess.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from powersync_plugin.core.state import InstanceState

HTTP_PORT = 8080


class EnvRef:
    """`!env NAME`: the service substitutes a `PS_*` environment variable at start."""

    def __init__(self, name: str):
        if not name.startswith("PS_"):
            raise ValueError("PowerSync's !env reads only PS_* variables")
        self.name = name


def desired_config(state: InstanceState) -> dict[str, Any]:
    link = state.link
    storage_uri = EnvRef("PS_DATA_SOURCE_URI") if state.storage == "same-database" else EnvRef("PS_STORAGE_SOURCE_URI")
    key: dict[str, Any] = {"kty": "oct", "alg": "HS256"}
    if state.kid:
        key["kid"] = state.kid
    key["k"] = EnvRef("PS_SECRET_KEY_B64")
    config: dict[str, Any] = {
        "replication": {
            "connections": [
                {
                    "type": "postgresql",
                    "uri": EnvRef("PS_DATA_SOURCE_URI"),
                    "sslmode": link.source_sslmode if link else "disable",
                    "slot_name_prefix": state.slot_prefix,
                }
            ]
        },
        "storage": {
            "type": "postgresql",
            "uri": storage_uri,
            "sslmode": link.storage_sslmode if link else "disable",
        },
        "port": HTTP_PORT,
        "client_auth": {"audience": list(state.audience), "jwks": {"keys": [key]}},
        "api": {"tokens": [EnvRef("PS_API_TOKEN")]},
    }
    # No `sync_config`: rules given by the config would disable the deploy API (PSYNC_S4105) and
    # need a restart per change; they go through /api/sync-rules/v1/deploy (rules_delivery.py).
    if state.telemetry is not None:
        # PowerSync v1.25.0 packages/types PowerSyncConfig.ts: `telemetry.disable_telemetry_sharing`
        # is a required boolean whenever `telemetry` is present (adopted `prometheus_port` merges in)
        config["telemetry"] = {"disable_telemetry_sharing": not state.telemetry}
    if state.metrics_port is not None:  # v1.25.0 `telemetry.prometheus_port`, beside the required flag
        config["telemetry"] = {"disable_telemetry_sharing": not telemetry_sharing(state), "prometheus_port": state.metrics_port}
    if state.log_level is not None:  # v1.25.0 LoggingConfig `system.logging.level`
        config["system"] = {"logging": {"level": state.log_level}}
    return _merge_extras(config, from_json_safe(state.config_extras))


# compound-config-collector.ts: `disable_telemetry_sharing ?? false`, so sharing is on by default
UPSTREAM_TELEMETRY_SHARING = True


def telemetry_sharing(state: InstanceState) -> bool:
    """Whether the rendered config lets the service share its anonymous telemetry: the setting,
    else an adopted config's own `telemetry` key, else the service's default."""
    if state.telemetry is not None:
        return state.telemetry
    adopted = (state.config_extras.get("telemetry") or {}).get("disable_telemetry_sharing")
    return not adopted if isinstance(adopted, bool) else UPSTREAM_TELEMETRY_SHARING


def _merge_extras(base: Any, extras: Any) -> Any:
    """Adopted keys the plugin does not model, added where the rendered config has nothing."""
    if isinstance(base, dict) and isinstance(extras, dict):
        for key, value in extras.items():
            base[key] = _merge_extras(base[key], value) if key in base else value
        return base
    if isinstance(base, list) and isinstance(extras, list) and base and extras:
        # The first entry is the one the plugin renders (the replication connection, the managed
        # JWKS key); adopted entries after it (other JWKS keys) follow unchanged.
        base[0] = _merge_extras(base[0], extras[0])
        base.extend(extras[1:])
        return base
    return base


def to_json_safe(node: Any) -> Any:
    if isinstance(node, EnvRef):
        return {"$env": node.name}
    if isinstance(node, dict):
        return {str(key): to_json_safe(value) for key, value in node.items()}
    if isinstance(node, list):
        return [to_json_safe(value) for value in node]
    return node


def from_json_safe(node: Any) -> Any:
    if isinstance(node, dict):
        if set(node) == {"$env"}:
            return EnvRef(node["$env"])
        return {key: from_json_safe(value) for key, value in node.items()}
    if isinstance(node, list):
        return [from_json_safe(value) for value in node]
    return node


def render(config: dict[str, Any]) -> str:
    return _render_node(config, 0) + "\n"


def config_digest(rendered: str) -> str:
    return hashlib.sha256(rendered.encode("utf-8")).hexdigest()[:16]


def _render_node(node: Any, depth: int) -> str:
    pad = "  " * (depth + 1)
    close = "  " * depth
    if isinstance(node, EnvRef):
        return f"!env {node.name}"
    if isinstance(node, dict):
        if not node:
            return "{}"
        items = [f"{pad}{json.dumps(str(key))}: {_render_node(value, depth + 1)}" for key, value in node.items()]
        return "{\n" + ",\n".join(items) + "\n" + close + "}"
    if isinstance(node, list):
        if not node:
            return "[]"
        items = [pad + _render_node(value, depth + 1) for value in node]
        return "[\n" + ",\n".join(items) + "\n" + close + "]"
    if isinstance(node, str):
        return _quoted(node)
    return json.dumps(node)


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar that parses back to exactly `text`.

    JSON escaping covers quotes, backslashes and C0 controls; YAML additionally folds or rejects
    other non-printable characters (NEL, line and paragraph separators), so those are escaped too.
    """
    out = []
    for char in json.dumps(text, ensure_ascii=False)[1:-1]:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029, 0xFEFF) or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        elif code > 0xFFFF and not char.isprintable():
            out.append(f"\\U{code:08x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
