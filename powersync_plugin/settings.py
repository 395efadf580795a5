"""Where the plugin keeps its files, and the one pin of the PowerSync image."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_IMAGE = "journeyapps/powersync-service"
# The single plugin-level pin. New instances take, in order: --image-version, the env
# DOKKU_POWERSYNC_IMAGE_VERSION, `powersync:set --global image-version X.Y.Z`, then this.
PINNED_IMAGE_VERSION = "1.25.0"
GLOBAL_STREAM = "_global"  # plugin-wide settings; never a valid instance (app) name
DEFAULT_MEMORY = "400m"


def default_image_version(global_setting: str | None = None) -> str:
    return os.environ.get("DOKKU_POWERSYNC_IMAGE_VERSION") or global_setting or PINNED_IMAGE_VERSION


def lib_root() -> Path:
    return Path(os.environ.get("DOKKU_LIB_PATH") or os.environ.get("DOKKU_LIB_ROOT") or "/var/lib/dokku")


def data_root() -> Path:
    return Path(os.environ.get("POWERSYNC_DATA_ROOT") or lib_root() / "services" / "powersync")


def journal_path() -> Path:
    return data_root() / "journal.sqlite3"


def locks_dir() -> Path:
    return data_root() / "locks"


def instance_dir(name: str) -> Path:
    return data_root() / "instances" / name


def seconds(env_name: str, default: float) -> float:
    """Timing knobs (readiness wait, stay-up window) overridable for slow hosts."""
    try:
        return float(os.environ.get(env_name, default))
    except ValueError:
        return default
