"""The one redaction function: every line the plugin prints or records passes through it."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

MASK = "*****"
SENSITIVE_KEYS = re.compile(r"(SECRET|PASSWORD|TOKEN|KEY|_URI|_URL|POWERSYNC_CONFIG_B64)", re.IGNORECASE)
_DSN_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]+)(?P<tail>@)", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)([A-Za-z0-9._~+/=-]+)")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")


# A config key named like a secret, anywhere in a nested config (`Password`, `api_token`, `keys`...)
_SECRET_CONFIG_KEY = re.compile(r"pass(word|wd)?|secret|token|key", re.IGNORECASE)


def mask_config_secrets(node):
    """A copy of a JSON-safe config fragment (adopted extras) for display: every `!env` value
    (stored as {"$env": NAME}) and the whole value of every key named like a password, secret,
    token or key is masked, at any depth."""
    if isinstance(node, dict):
        if set(node) == {"$env"}:
            return MASK
        return {
            key: MASK if _SECRET_CONFIG_KEY.search(str(key)) else mask_config_secrets(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [mask_config_secrets(value) for value in node]
    return node


def env_for_config_secrets(node, path: str = ""):
    """For an export: a copy of a JSON-safe config fragment (adopted extras) in which every string
    written inline under a key named like a password, secret, token or key reads a PS_* config
    var instead ({"$env": NAME}, PowerSync's `!env NAME`), and the (dotted path, NAME) pairs of
    those values. The value itself stays out of the file; the importing host sets NAME."""
    found: list[tuple[str, str]] = []

    def walk(value, where: str, secret: bool):
        if isinstance(value, dict):
            if set(value) == {"$env"}:
                return value
            return {key: walk(item, f"{where}.{key}" if where else str(key), bool(_SECRET_CONFIG_KEY.search(str(key))))
                    for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, f"{where}[{index}]", secret) for index, item in enumerate(value)]
        if secret and isinstance(value, str):
            name = "PS_" + re.sub(r"[^A-Z0-9]+", "_", where.upper()).strip("_")
            found.append((where, name))
            return {"$env": name}
        return value

    return walk(node, path, False), found


@dataclass
class Redactor:
    secrets: set[str] = field(default_factory=set)

    def add(self, *values: str) -> None:
        for value in values:
            # Very short values would mask innocent text; real secrets are long.
            if value and len(value) >= 6:
                self.secrets.add(value)

    def text(self, text: str, mask: Callable[[str], str] = lambda _secret: MASK) -> str:
        """`text` with every known secret, DSN password, bearer token and JWT replaced by
        `mask(secret)`. The tests' failure output masks with a length and digest instead, so a
        failing comparison still tells two secrets apart (tests/secrets_in_output.py)."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, mask(secret))
        text = _DSN_PASSWORD.sub(lambda m: m.group("head") + mask(m.group("password")) + m.group("tail"), text)
        text = _BEARER.sub(lambda m: m.group(1) + mask(m.group(2)), text)
        return _JWT.sub(lambda m: mask(m.group(0)), text)

    def argument(self, arg: str) -> str:
        """A command-line argument: `KEY=value` pairs of sensitive keys lose their value."""
        key, sep, _value = arg.partition("=")
        if sep and SENSITIVE_KEYS.search(key):
            return f"{key}={MASK}"
        return self.text(arg)

    def command_line(self, args) -> str:
        return " ".join(self.argument(arg) for arg in args)
