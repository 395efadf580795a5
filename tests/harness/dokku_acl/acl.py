"""A model of dokku-community/dokku-acl (master, cacc182) for the test harness: its `user-auth`
trigger (`user-auth`, `internal-functions` fn-check-app-acl / fn-check-service-acl) and the
`acl:add|remove|list APP [USER]` commands (`subcommands/add|remove|list`, fn-acl-check-app).
Decisions and messages are the upstream ones; see tests/harness/README.md for what is left out.

Configuration comes from the environment, which Dokku fills from `~dokku/.dokkurc/acl`:
DOKKU_SUPER_USER, DOKKU_ACL_USER_COMMANDS, DOKKU_ACL_PER_APP_COMMANDS,
DOKKU_ACL_PER_SERVICE_COMMANDS, DOKKU_ACL_LINK_COMMANDS (space-separated command names).
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

APP_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")  # Dokku's IsValidAppName (plugins/common/common.go)


class Refused(Exception):
    """dokku_log_fail: ` !     MESSAGE` on stderr, the script exits (1 unless told)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _commands(variable: str) -> list[str]:
    return os.environ.get(variable, "").split()


def _app_exists(app: str) -> bool:
    """verify_app_name: a valid name and an app directory (user-auth-app is not modelled)."""
    return bool(APP_NAME.fullmatch(app)) and (Path(os.environ["DOKKU_ROOT"]) / app).is_dir()


def _check_app_acl(cmd: str, app: str, name: str) -> None:
    if _app_exists(app) and (Path(os.environ["DOKKU_ROOT"]) / app / "acl" / name).is_file():
        return
    raise Refused(f"User {name} does not have permissions to run {cmd} on {app}, or {app} does not exist")


def _check_service_acl(cmd: str, service: str, name: str) -> None:
    service_path = Path(os.environ["DOKKU_LIB_ROOT"]) / "services" / cmd.split(":", 1)[0] / service
    if service_path.is_dir() and (service_path / "acl" / name).is_file():
        return
    raise Refused(f"User {name} does not have permissions to run {cmd} on {service}, or {service} does not exist")


def _strip_quotes(arg: str) -> str:
    """The upstream perl/sed pipeline: drop unescaped single quotes, unescape \\', drop one leading
    slash (git-receive-pack '/app')."""
    arg = re.sub(r"(?<!\\)'", "", arg).replace("\\'", "'")
    return arg[1:] if arg.startswith("/") else arg


def user_auth(ssh_user: str, ssh_name: str, *args: str) -> None:
    lists = [_commands(v) for v in ("DOKKU_ACL_USER_COMMANDS", "DOKKU_ACL_PER_APP_COMMANDS",
                                     "DOKKU_ACL_PER_SERVICE_COMMANDS", "DOKKU_ACL_LINK_COMMANDS")]
    user_commands, per_app, per_service, link = lists
    if not any(lists) or ssh_user == "root":
        return
    super_user = os.environ.get("DOKKU_SUPER_USER", "")
    if super_user and ssh_name == super_user:
        return
    cmd = args[0] if args else ""
    second = args[1] if len(args) > 1 else ""
    third = args[2] if len(args) > 2 else ""
    if cmd in user_commands:
        return
    if cmd in per_app:
        if not second:
            raise Refused("An app name is required")
        return _check_app_acl(cmd, _strip_quotes(second), ssh_name)
    if cmd in per_service:
        if not second:
            raise Refused("A service name is required")
        return _check_service_acl(cmd, second, ssh_name)
    if cmd in link:
        if not second:
            raise Refused("A service name is required")
        if not third:
            raise Refused("An app name is required")
        _check_service_acl(cmd, second, ssh_name)
        return _check_app_acl(cmd, third, ssh_name)
    raise Refused(f"User {ssh_name} does not have permissions to run {cmd}")


def _check_app(app: str) -> Path:
    """fn-acl-check-app: the app exists, and the command runs on the host (no ssh key NAME)."""
    if not _app_exists(app):
        raise Refused(f"App {app} does not exist", 20)
    if os.environ.get("NAME"):
        raise Refused("You can only modify ACL using local dokku command on target host")
    return Path(os.environ["DOKKU_ROOT"]) / app / "acl"


def acl_command(cmd: str, app: str = "", user: str = "") -> None:
    acl = _check_app(app)
    if cmd == "acl:list":
        for entry in sorted(acl.iterdir()) if acl.is_dir() else []:
            print(entry.name)
        return
    if not user:
        raise Refused("Please specify a user name")
    if cmd == "acl:add":
        acl.mkdir(parents=True, exist_ok=True)
        if (acl / user).is_file():
            print("User already has permissions to push to this repository", file=sys.stderr)
            raise SystemExit(2)
        (acl / user).touch()
    elif cmd == "acl:remove":
        (acl / user).unlink(missing_ok=True)
        if acl.is_dir() and not any(acl.iterdir()):
            acl.rmdir()


def main(argv: list[str]) -> int:
    try:
        if argv[0] == "user-auth":
            user_auth(*argv[1:])
        else:
            acl_command(*argv)
    except Refused as refused:
        print(f" !     {refused}", file=sys.stderr)
        return refused.code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
