"""App and global state as small JSON files, each read-modify-write under one flock.

No lock is held while triggers or deploys run: plugin scripts call back into ``dokku``.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from pathlib import Path

from .output import app_missing, no_app
from .paths import layout

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


def _default_app() -> dict:
    return {
        "created_at": str(int(time.time())),
        "ports": [],
        "domains": [],
        "vhost_enabled": False,
        "resource": {},
        "storage": [],
        "docker_options": {"build": [], "deploy": [], "run": []},
        "checks": {"skipped": [], "disabled": []},
        "network": {"bind_all_interfaces": False},
        "deploy": {"source_image": None, "deployed": False, "restore": True, "git_rev": None,
                   "app_json": None},
        "letsencrypt": False,
        "nginx_reloads": 0,
    }


@contextlib.contextmanager
def locked():
    with open(layout().lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def app_exists(app: str) -> bool:
    return bool(app) and "/" not in app and (layout().app_dir(app) / "harness-app.json").is_file()


def require_app(app: str | None, *, stdout: bool = False) -> str:
    if not app:
        no_app()
    if not app_exists(app):
        app_missing(app, stdout=stdout)
    return app


def list_apps() -> list[str]:
    root = layout().dokku_root
    return sorted(p.name for p in root.iterdir() if (p / "harness-app.json").is_file()) if root.exists() else []


def _app_file(app: str) -> Path:
    return layout().app_dir(app) / "harness-app.json"


def create_app(app: str) -> None:
    with locked():
        d = layout().app_dir(app)
        d.mkdir(parents=True, exist_ok=True)
        _write_json(_app_file(app), _default_app())


def load_app(app: str) -> dict:
    data = _default_app()
    data.update(_read_json(_app_file(app), {}))
    return data


@contextlib.contextmanager
def edit_app(app: str):
    with locked():
        data = load_app(app)
        yield data
        _write_json(_app_file(app), data)


def _config_file(app: str | None) -> Path:
    lay = layout()
    return lay.global_state if app is None else lay.config / app / "env.json"


def get_config(app: str | None) -> dict:
    return dict(_read_json(_config_file(app), {}))


@contextlib.contextmanager
def edit_config(app: str | None):
    with locked():
        data = get_config(app)
        yield data
        _write_json(_config_file(app), data)


def delete_app_state(app: str) -> None:
    import shutil
    with locked():
        shutil.rmtree(layout().app_dir(app), ignore_errors=True)
        shutil.rmtree(layout().config / app, ignore_errors=True)


def write_dokku_file(app: str, name: str, value: str) -> None:
    (layout().app_dir(app) / name).write_text(value + "\n")
