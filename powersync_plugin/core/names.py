"""Validation of instance names and the identifiers derived from them.

Slot prefixes and storage database names are derived from the app name, and every instance on
a Postgres server must get its own: they are the only thing that keeps one instance's teardown
off another's replication slots. So the mappings below are injective, and every prefix the plugin
records (created or adopted) is checked against what PowerSync and Postgres accept.
"""
from __future__ import annotations

import re

from powersync_plugin.core.errors import DomainError, UsageProblem

# Dokku's app names (plugins/common IsValidAppName): a lowercase letter or digit, then lowercase
# letters, digits, dots and dashes. Apps made before Dokku tightened the rule may also hold
# underscores (IsValidAppNameOld); a backend is an existing app, so those are accepted for it.
# The length cap keeps `<slot prefix><id>_<hex>` inside Postgres's 63-byte identifier limit.
MAX_NAME_LENGTH = 40
_APP_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_EXISTING_APP_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

# Postgres slot names: lowercase letters, digits and underscores, at most 63 bytes. PowerSync
# appends `<sync rules id>_<4 hex>`; 55 leaves room for ids up to 999.
MAX_PREFIX_LENGTH = 55
_SLOT_PREFIX = re.compile(r"^[a-z0-9_]{1,%d}$" % MAX_PREFIX_LENGTH)


def check_app_name(name: str, what: str = "instance name") -> str:
    return _check(name, what, _APP_NAME, "lowercase letters, digits, dots and dashes")


def check_existing_app_name(name: str, what: str = "backend app name") -> str:
    return _check(name, what, _EXISTING_APP_NAME, "lowercase letters, digits, dots, dashes and underscores")


def _check(name: str, what: str, pattern: re.Pattern, allowed: str) -> str:
    shown = name if len(name) <= 60 and name.isprintable() else repr(name[:60]) + "..."
    if not name:
        raise UsageProblem(f"The {what} is missing")
    if len(name) > MAX_NAME_LENGTH:
        raise UsageProblem(f"Invalid {what} {shown}: at most {MAX_NAME_LENGTH} characters")
    if not pattern.match(name):
        raise UsageProblem(f"Invalid {what} {shown}: use {allowed}, starting with a letter or digit (a Dokku app name)")
    return name


def slot_prefix(name: str) -> str:
    """Each instance replicates under its own prefix. Names without dots keep the readable
    `ps_<name, - as _>_`; a name with dots gets `psd_` (a family no dot-free name reaches) and an
    escaped spelling (`-` as `_h`, `.` as `_d`), so no two names share a prefix."""
    if "." not in name:
        prefix = "ps_" + name.replace("-", "_") + "_"
    else:
        prefix = "psd_" + name.replace("-", "_h").replace(".", "_d") + "_"
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise UsageProblem(
            f"Invalid instance name {name}: its replication slot prefix {prefix} would be {len(prefix)} bytes "
            f"(at most {MAX_PREFIX_LENGTH}; a dot or a dash beside dots takes two): use a shorter name"
        )
    return check_slot_prefix(prefix, f"the slot prefix of {name}")


def check_slot_prefix(prefix: str, what: str = "slot prefix") -> str:
    if not _SLOT_PREFIX.match(prefix):
        raise DomainError(
            f"Invalid {what} {prefix!r}: PowerSync names slots `<prefix><id>_<4 hex>` and Postgres accepts only "
            "lowercase letters, digits and underscores, at most 63 bytes in all"
        )
    return prefix


def slot_name_pattern(prefix: str) -> str:
    """A regular expression (Postgres `~` and Python alike) matching exactly the slots PowerSync
    makes under `prefix`. Anchored and ending in `<digits>_<4 hex>`, it cannot match the slots of
    a longer prefix (`ps_app_` never matches `ps_app_two_1_2a62`)."""
    return "^" + check_slot_prefix(prefix) + "[0-9]+_[0-9a-f]{4}$"


def is_own_slot(prefix: str, slot: str) -> bool:
    return re.match(slot_name_pattern(prefix), slot) is not None


def storage_database(name: str) -> str:
    """Dashes become underscores; dots stay (a quoted identifier takes them), so the mapping is
    injective over Dokku's app names."""
    return "powersync_" + name.replace("-", "_")


def source_role_name(name: str) -> str:
    """The instance's own Postgres role (`link --source-role dedicated`): the storage database's
    spelling, so it is as injective and stays within Postgres's 63 bytes (10 + 40)."""
    return storage_database(name)
