"""The service settings of `powersync:set NAME KEY VALUE` that shape the deployed service: what a
value may be, its canonical form, and the state field it folds into. Pure.

- `memory`: the container limit (Dokku's `resource:limit`) and the Node heap with it
  (`NODE_OPTIONS=--max-old-space-size`, 80% of the limit).
- `log-level`: PowerSync's `system.logging.level` (LoggingConfig, v1.25.0: winston's npm levels;
  `PS_LOG_LEVEL` in the app's env would win over it, as service-core's configureLogger reads it
  first).
- `metrics`: PowerSync's `telemetry.prometheus_port`, published on the host's 127.0.0.1 only.
- `compact-schedule`: a cron entry in the image's app.json running the service's `compact`.
"""
from __future__ import annotations

import re
from typing import Optional

from powersync_plugin.core.config_render import HTTP_PORT
from powersync_plugin.core.errors import UsageProblem
from powersync_plugin.core.state import InstanceState

LOG_LEVELS = ("error", "warn", "info", "http", "verbose", "debug", "silly")
UPSTREAM_LOG_LEVEL = "info"  # lib-services Logger.ts DEFAULT_LOG_LEVEL
OFF = "off"
# Unprivileged ports only; the next port must be free too (see metrics_publish_option).
METRICS_PORTS = (1024, 65534)
# The key, the state field it folds into, and the values it takes (for messages).
FIELDS = {
    "memory": ("memory_mb", "a size like 512m or 1g (at least 128m)"),
    "log-level": ("log_level", " | ".join(LOG_LEVELS)),
    "metrics": ("metrics_port", f"a port {METRICS_PORTS[0]}-{METRICS_PORTS[1]} (not {HTTP_PORT}) | off"),
    "compact-schedule": ("compact_schedule", "a cron schedule like '0 3 * * *' or @daily | off"),
}
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# robfig/cron's standard five fields (what Dokku's cron plugin accepts), loosely: each field is
# made of digits, names, `*`, `,`, `-` and `/`.
_CRON_FIELD = re.compile(r"^[A-Za-z0-9*,/-]+$")


_MEMORY = re.compile(r"^(\d+)([mMgG])$")


def memory_megabytes(memory: str, what: str = "--memory") -> int:
    match = _MEMORY.match(memory.strip())
    if not match:
        raise UsageProblem(f"Invalid {what} {memory!r}: use a size like 400m or 1g")
    amount, unit = int(match.group(1)), match.group(2).lower()
    megabytes = amount * (1024 if unit == "g" else 1)
    if megabytes < 128:
        raise UsageProblem(f"{what} {memory} is too small: PowerSync needs at least 128m (400m is a sound start)")
    return megabytes


def node_heap_megabytes(memory_mb: int) -> int:
    """About 80% of the container limit, the service's own advice (heap exhaustion is the most
    reported self-hosting failure)."""
    return memory_mb * 4 // 5


def normalise(key: str, value: str) -> str:
    """The canonical form of `value` for `key`, or a UsageProblem naming the accepted values."""
    text = value.strip()
    if key == "memory":
        return f"{memory_megabytes(text, what='memory')}m"
    if key == "log-level":
        if text.lower() in LOG_LEVELS:
            return text.lower()
    elif key == "metrics":
        if text.lower() == OFF:
            return OFF
        if text.isdigit() and METRICS_PORTS[0] <= int(text) <= METRICS_PORTS[1] and int(text) != HTTP_PORT:
            return str(int(text))
    elif key == "compact-schedule":
        if text.lower() == OFF:
            return OFF
        if _valid_schedule(text):
            return " ".join(text.split())
    raise UsageProblem(f"Invalid value {value!r} for {key}: use {FIELDS[key][1]}")


def _valid_schedule(text: str) -> bool:
    if text.startswith("@"):
        return text in _DESCRIPTORS  # no @every: the host crontab Dokku writes has no such line
    fields = text.split()
    return len(fields) == 5 and all(_CRON_FIELD.match(field) for field in fields)


def folded(key: str, value: str):
    """The state field's value for a stored setting."""
    if key == "memory":
        return int(value[:-1])
    if value == OFF:
        return None
    return int(value) if key == "metrics" else value


def current(state: InstanceState, key: str) -> str:
    """The value in effect, in the canonical form `normalise` returns."""
    if key == "memory":
        return f"{state.memory_mb}m"
    if key == "log-level":
        return log_level(state)
    value = getattr(state, FIELDS[key][0])
    return OFF if value is None else str(value)


def log_level(state: InstanceState) -> str:
    """The setting, else an adopted config's own level, else the service's default."""
    if state.log_level:
        return state.log_level
    adopted = ((state.config_extras.get("system") or {}).get("logging") or {}).get("level")
    return adopted if adopted in LOG_LEVELS else UPSTREAM_LOG_LEVEL


def metrics_publish_option(port: int) -> str:
    """The docker option publishing the metrics port on the host's loopback only.

    A fixed host port breaks Dokku's zero-downtime restart (the new container starts while the
    old one still holds the port: "port is already allocated", dokku/dokku#3251), so two host
    ports are offered: Docker gives each container the free one, PORT or PORT+1."""
    return f"-p 127.0.0.1:{port}-{port + 1}:{port}"


_PUBLISH_OPTION = re.compile(r"^-p 127\.0\.0\.1:(\d+)-(\d+):(\d+)$")


def is_metrics_publish_option(option: str) -> bool:
    """An option `metrics_publish_option` made (the operator's own options are left alone)."""
    match = _PUBLISH_OPTION.match(option)
    return bool(match) and int(match.group(2)) == int(match.group(1)) + 1 == int(match.group(3)) + 1


def node_options(memory_mb: int) -> str:
    return f"--max-old-space-size={node_heap_megabytes(memory_mb)}"


# The image's entrypoint is `node service/lib/entry.js` (service/Dockerfile at v1.25.0) and a
# Dokku cron task or `dokku run` passes its command to it as arguments.
COMPACT_COMMAND = ("compact",)


def compact_cron(schedule: Optional[str]) -> list[dict]:
    """The app.json `cron` entries for a compaction schedule (none when off)."""
    return [{"command": " ".join(COMPACT_COMMAND), "schedule": schedule}] if schedule else []
