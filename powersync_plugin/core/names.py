"""Validation of instance names and the identifiers derived from them."""
from __future__ import annotations

import re

from powersync_plugin.core.errors import UsageProblem

# Dokku app names: lowercase letters, digits and dashes, starting with a letter or digit.
# The length cap keeps `<slot prefix><id>_<hex>` inside Postgres's 63-byte identifier limit.
MAX_NAME_LENGTH = 40
_APP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def check_app_name(name: str, what: str = "instance name") -> str:
    shown = name if len(name) <= 60 and name.isprintable() else repr(name[:60]) + "..."
    if not name:
        raise UsageProblem(f"The {what} is missing")
    if len(name) > MAX_NAME_LENGTH:
        raise UsageProblem(f"Invalid {what} {shown}: at most {MAX_NAME_LENGTH} characters")
    if not _APP_NAME.match(name):
        raise UsageProblem(
            f"Invalid {what} {shown}: use lowercase letters, digits and dashes, "
            "starting with a letter or digit (a Dokku app name)"
        )
    return name


def slot_prefix(name: str) -> str:
    """Each instance replicates under its own prefix, so instances sharing a Postgres server
    never touch each other's slots."""
    return "ps_" + name.replace("-", "_") + "_"


def storage_database(name: str) -> str:
    return "powersync_" + name.replace("-", "_")
