"""Reading a hand-made PowerSync deployment into the plugin's model. Pure.

What the plugin models is extracted; everything else in the config is kept verbatim as
`extras`, so the config the plugin renders afterwards is equivalent to the one that runs.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Optional

import yaml

from powersync_plugin.core.config_render import EnvRef
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.names import check_slot_prefix

DEFAULT_SLOT_PREFIX = "powersync_"  # the service's default: adopting must keep the running slot
MANAGED_ENV = {
    "POWERSYNC_CONFIG_B64", "PS_SECRET_KEY_B64", "PS_DATA_SOURCE_URI", "PS_STORAGE_SOURCE_URI", "PS_API_TOKEN",
    "NODE_OPTIONS", "DATABASE_URL",
}
# Keys older scripts left behind (facts/jeeves-deployment.md): dropped at the first managed change.
LEFTOVER_MARKERS = ("SECRET_KEY", "POWERSYNC_CONFIG_PATH", "POWERSYNC_SYNC_CONFIG_B64", "POWERSYNC_SYNC_RULES_B64")


class _EnvLoader(yaml.SafeLoader):
    pass


def _env_constructor(loader, node):
    return EnvRef(loader.construct_scalar(node))


_EnvLoader.add_constructor("!env", _env_constructor)


@dataclass(frozen=True)
class AdoptedConfig:
    rules: str
    audience: tuple[str, ...]
    kid: Optional[str]
    slot_prefix: str
    storage: str  # same-database | uri | separate-database
    source_sslmode: str
    storage_sslmode: str
    has_api_tokens: bool
    extras: dict = field(default_factory=dict)
    # PS_* variables the kept extras read with !env (an extra JWKS key's secret): not leftovers.
    referenced_env: frozenset = frozenset()
    other_key_ids: tuple = ()  # kids of JWKS keys kept verbatim beside the managed one


def _load(text: str) -> dict:
    try:
        config = yaml.load(text, Loader=_EnvLoader)  # noqa: S506 - SafeLoader plus !env
    except (yaml.YAMLError, ValueError) as exc:
        raise DomainError(f"The running config is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise DomainError("The running config is not a mapping")
    return config


def rules_path(text: str) -> Optional[str]:
    """`sync_config.path` (or the older `sync_rules.path`) when the rules live in a file beside the
    config rather than inline; the service resolves it against the config file's directory."""
    config = _load(text)
    section = config.get("sync_config") or config.get("sync_rules")
    if isinstance(section, dict) and section.get("content") is None and isinstance(section.get("path"), str):
        return section["path"]
    return None


def parse_config(text: str, rules_file: Optional[str] = None) -> AdoptedConfig:
    """`rules_file`: the content of the file behind `rules_path(text)`, read from the container."""
    config = _load(text)
    extras = copy.deepcopy(config)

    connections = (config.get("replication") or {}).get("connections") or []
    if len(connections) != 1 or not isinstance(connections[0], dict):
        raise DomainError("The running config has no single replication connection: not a deployment the plugin can adopt")
    connection = connections[0]
    if connection.get("type") != "postgresql" or not _is_env(connection.get("uri"), "PS_DATA_SOURCE_URI"):
        raise DomainError("The replication connection must be `type: postgresql` with `uri: !env PS_DATA_SOURCE_URI`")

    storage = config.get("storage") or {}
    if storage.get("type") != "postgresql":
        raise DomainError("Only Postgres bucket storage can be adopted (storage.type: postgresql)")
    if _is_env(storage.get("uri"), "PS_DATA_SOURCE_URI"):
        storage_mode = "same-database"
    elif _is_env(storage.get("uri"), "PS_STORAGE_SOURCE_URI"):
        storage_mode = "uri"
    else:
        raise DomainError("storage.uri must read !env PS_DATA_SOURCE_URI or !env PS_STORAGE_SOURCE_URI")

    rules = _rules(config, rules_file)
    client_auth = config.get("client_auth") or {}
    keys = ((client_auth.get("jwks") or {}).get("keys")) or []
    managed = [
        index for index, key in enumerate(keys)
        if isinstance(key, dict) and key.get("alg") == "HS256" and _is_env(key.get("k"), "PS_SECRET_KEY_B64")
    ]
    if len(managed) != 1:
        raise DomainError(
            "client_auth.jwks must hold exactly one HS256 key with `k: !env PS_SECRET_KEY_B64` (the backend's "
            "SECRET_KEY); other keys are kept as they are"
        )
    managed_key = keys[managed[0]]
    other_keys = [key for index, key in enumerate(keys) if index != managed[0]]
    if any(not isinstance(key, dict) or ("k" in key and not isinstance(key["k"], EnvRef)) for key in other_keys):
        raise DomainError(
            "client_auth.jwks has a key whose secret `k` is written inline: move it to a PS_* config var "
            "read with `!env`, so no secret is copied into the plugin's journal"
        )
    audience = tuple(str(item) for item in client_auth.get("audience") or ())
    if not audience:
        raise DomainError("client_auth.audience is empty: the running instance rejects every token")

    # What the plugin renders itself is removed from the extras; the rest is kept verbatim.
    extra_connection = extras["replication"]["connections"][0]
    for key in ("type", "uri", "sslmode", "slot_name_prefix"):
        extra_connection.pop(key, None)
    if not extra_connection:
        extras["replication"].pop("connections")
    for key in ("type", "uri", "sslmode"):
        extras["storage"].pop(key, None)
    for key in ("sync_config", "sync_rules", "port"):
        extras.pop(key, None)
    extras["client_auth"].pop("audience", None)
    extras["client_auth"].pop("jwks", None)
    if other_keys:
        # The rendered config lists the managed key first; the others follow it unchanged.
        extras["client_auth"]["jwks"] = {"keys": [{}, *copy.deepcopy(other_keys)]}
    api = extras.get("api")
    has_tokens = bool(isinstance(api, dict) and api.get("tokens"))
    if isinstance(api, dict):
        api.pop("tokens", None)
        api.pop("port", None)  # rendered as the top-level `port`, which the service reads first
    return AdoptedConfig(
        rules=rules,
        audience=audience,
        kid=managed_key.get("kid"),
        slot_prefix=check_slot_prefix(str(connection.get("slot_name_prefix") or DEFAULT_SLOT_PREFIX), "slot_name_prefix"),
        storage=storage_mode,
        source_sslmode=connection.get("sslmode") or "verify-full",
        storage_sslmode=storage.get("sslmode") or "verify-full",
        has_api_tokens=has_tokens,
        extras=_prune(extras),
        referenced_env=frozenset(_env_names(extras)),
        other_key_ids=tuple(str(key.get("kid") or "(no kid)") for key in other_keys),
    )


def port_of(config_text: str) -> int:
    config = yaml.load(config_text, Loader=_EnvLoader)  # noqa: S506
    return int(config.get("port") or (config.get("api") or {}).get("port") or 8080)


def leftover_keys(env_keys, referenced=frozenset()) -> list[str]:
    return sorted(
        key for key in env_keys
        if key not in MANAGED_ENV and key not in referenced
        and (key in LEFTOVER_MARKERS or (key.startswith("PS_") and "SECRET" in key) or key.endswith("_SECRET_KEY"))
    )


def _env_names(node: Any):
    if isinstance(node, EnvRef):
        yield node.name
    elif isinstance(node, dict):
        for value in node.values():
            yield from _env_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _env_names(value)


def _rules(config: dict, rules_file: Optional[str]) -> str:
    if "sync_config" in config and "sync_rules" in config:
        raise DomainError("The running config has both sync_config and sync_rules")
    section = config.get("sync_config") or config.get("sync_rules") or {}
    content = section.get("content") if isinstance(section, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(section, dict) and isinstance(section.get("path"), str) and rules_file is not None:
        return rules_file
    raise DomainError(
        "The running config has no rules the plugin can read (sync_config.content, or a sync_config.path "
        "file readable in the container)"
    )


def _is_env(value: Any, name: str) -> bool:
    return isinstance(value, EnvRef) and value.name == name


def _prune(node: Any) -> Any:
    if isinstance(node, dict):
        pruned = {key: _prune(value) for key, value in node.items()}
        return {key: value for key, value in pruned.items() if value not in ({}, [])}
    return node
