"""The startup checks the derived image carries in /app/app.json, for Dokku's health checker."""
from __future__ import annotations

from powersync_plugin import settings

# Dokku runs only `startup` checks, from /app/app.json in the image (zero-downtime facts), all at
# once (docker-container-healthchecker 0.16), and switches traffic only when every one passed: the
# readiness probe, and the container still running with no restart STAY_UP seconds after it
# started. That second check is the gate against a process that turns ready, then exits (rules
# its replication rejects): Dokku refuses the switch and the old container keeps serving, instead
# of the plugin watching after the switch. `uptime` must be a check of its own (the checker
# refuses it next to a `path`) and whole seconds (an int in the checker's Go struct).
READINESS_CHECK = "powersync readiness"
STAY_UP_CHECK = "powersync stays up"


def stay_up_seconds() -> int:
    """POWERSYNC_STAY_UP_SECONDS (default 10, Dokku's own default uptime gate, which an app.json
    with checks replaces): how long the new container must have run before Dokku switches to it."""
    return max(1, int(settings.seconds("POWERSYNC_STAY_UP_SECONDS", 10)))


def app_json() -> dict:
    return {
        "healthchecks": {
            "web": [
                {
                    "type": "startup",
                    "name": READINESS_CHECK,
                    "path": "/probes/readiness",
                    "port": 8080,
                    "attempts": 30,
                    "wait": 1,
                    "timeout": 2,
                },
                {"type": "startup", "name": STAY_UP_CHECK, "uptime": stay_up_seconds()},
            ]
        }
    }


def checks_passed(output: str) -> bool:
    """Whether a deploy's output shows both checks passing for the container Dokku switched to:
    docker-container-healthchecker logs `Healthcheck succeeded name='NAME'` for each (its own
    logger: DOKKU_QUIET_OUTPUT does not silence it). Skipped or disabled checks log neither."""
    return all(f"Healthcheck succeeded name='{check}'" in output for check in (READINESS_CHECK, STAY_UP_CHECK))
