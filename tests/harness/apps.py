"""``apps:*`` (``rename`` and ``clone`` below), ``ports:*``, ``domains:*``, ``resource:*``,
``storage:*``, ``docker-options:*``, ``checks:*``, ``network:*``, ``nginx:*``
(facts: dokku-transcripts.md).

Modelled where the transcripts are silent (documented Dokku behaviour, simplified):
- ``ports:add``/``ports:clear``/``ports:remove`` fire ``post-proxy-ports-update APP add|clear|remove``;
  ``ports:set``/``ports:add`` keep the map sorted (Go's ``sort.Strings``) and refuse a reused
  scheme:host-port (`` !     Error validating [new |all ]port mappings: The same scheme:host-port is
  being reused: http:80``), as dokku/dokku v0.38.27 ``plugins/ports`` does.
- ``domains:add`` prints ``-----> Added DOMAIN to APP``, ``domains:clear`` ``-----> Cleared domains
  in APP``; only ``domains:set`` clears the ports map (the trap recorded on 0.38.27).
- ``checks:disable|enable`` print ``-----> Disabling|Enabling zero downtime for app's (APP)
  proctypes (web)``.
- ``letsencrypt:*`` and ``certs:*``: see ``certs.py``; ``nginx:reload`` prints nothing and is counted.
- ``network:report`` lists the fields of the transcript; only ``bind-all-interfaces`` is settable.

``apps:rename [--skip-deploy] OLD NEW`` and ``apps:clone [--skip-deploy] [--ignore-existing] OLD
NEW`` follow Dokku's Go ``CommandRename`` / ``CommandClone`` (dokku/dokku
``plugins/apps/subcommands.go``): OLD given (else "Please specify an app to run the command on"),
NEW given ("Please specify an new app name"), OLD exists (rc 20), NEW a valid name, NEW not taken
(`` !     Name is already taken``, rc 1; ``clone --ignore-existing`` only warns it and exits 0);
``-----> Renaming|Cloning OLD to NEW`` (not under --quiet); NEW is created exactly as by
``apps:create`` (``post-create NEW``); the setup trigger (``post-app-rename-setup`` /
``post-app-clone-setup OLD NEW``); rename only: OLD destroyed exactly as by
``apps:destroy --force`` (``pre-delete OLD latest``, containers and image removed,
``post-delete OLD latest``; ``DOKKU_APPS_FORCE_DELETE=1`` stays exported); ``--skip-deploy``
exports ``SKIP_REBUILD=true``; then ``post-app-rename`` / ``post-app-clone OLD NEW``, whose
``ps`` provider rebuilds NEW (the ``ps:rebuild`` cycle, deploy kind ``rebuild``, reason the
command) unless ``SKIP_REBUILD=true`` or NEW has no source image (never deployed: git's
receive-app does nothing without a repo). A failing trigger stops the command with rc 1.

What NEW gets from OLD, rename and clone alike unless said (core providers registered under
their real plugin names, so a plugin's provider sees those sorting before it already done):
- the env, wholesale (NO_VHOST, GIT_REV, service URLs), and the checks lists (Dokku keeps them in
  the env), copied *before* the setup trigger fires. The bash ``apps:rename``/``apps:clone``
  copied the app directory (ENV included) at that point; in the Go era the sources read do not
  show where ENV is copied, only that it is (dokku/dokku ``tests/unit/apps_1.bats``: ``config:get``
  on NEW after a rename; docs: "All of your config variables ... will be preserved");
- ``docker-options`` (all phases: a service's ``--link`` too), ``network`` (bind-all-interfaces),
  ``ports`` (the map), ``resource`` (limits), ``storage`` (mounts): each plugin's
  ``PropertyClone`` in both triggers;
- ``git``: the source image and git rev (so NEW can be rebuilt), ``apps``: created-at,
  ``app-json``: the extracted app.json, ``ps``: restore (modelled from those plugins' property
  clones; the app.json copy is not confirmed);
- ``domains``: rename keeps OLD's domains and vhost state, turning only ``OLD.<global vhost>``
  into ``NEW.<global vhost>`` (0.27.0 migration guide; ``domains:set-global`` sets one);
  clone copies no domains (NEW keeps what apps:create gave it; ``apps_2.bats`` expects only
  ``NEW.<global domain>``), its vhost state follows the copied NO_VHOST;
- not copied: Let's Encrypt state (a community plugin), nginx reload counts, ``deployed`` (NEW is
  deployed only once its rebuild succeeds), Dokku's ``CONTAINER/IP/PORT.web.1`` files.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re

from . import state, triggers
from .output import (DokkuExit, err, fail, info1, info2, no_app, out, parse_flags, quiet, report,
                     verbose, warn)

DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9*]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$",
                    re.IGNORECASE)


# ---- apps ---------------------------------------------------------------------------------

APP_NAME_RULE = ("App name must begin with lowercase alphanumeric character, and may only contain "
                 "lowercase alphanumerics, dots, and hyphens")


def create_app(app: str) -> int:
    """What ``apps:create`` does once the name is accepted (also step one of ``apps:rename`` and
    ``apps:clone``); returns the ``post-create`` exit code."""
    state.create_app(app)
    if not quiet():
        info1(f"Creating {app}...")
    globals_ = global_vhosts()
    if globals_:
        # Documented Dokku behaviour (the transcripts' host had no global vhost): the app is
        # served at APP.<global vhost>.
        with state.edit_config(app) as cfg:
            cfg["NO_VHOST"] = "0"
        with state.edit_app(app) as data:
            data["domains"] = [f"{app}.{vhost}" for vhost in globals_]
            data["vhost_enabled"] = True
        triggers.fire("post-config-update", [app, "set", "NO_VHOST"], quiet=True, stop_on_error=False)
        triggers.fire("post-domains-update", [app, "enable"], stop_on_error=False)
        return triggers.fire("post-create", [app])
    if not quiet():
        info1("Global server virtual host not set, disabling app vhost...")
    with state.edit_config(app) as cfg:
        cfg["NO_VHOST"] = "1"
    triggers.fire("post-config-update", [app, "set", "NO_VHOST"], quiet=True, stop_on_error=False)
    triggers.fire("post-domains-update", [app, "disable"], stop_on_error=False)
    return triggers.fire("post-create", [app])


def global_vhosts() -> list[str]:
    """Dokku's global vhosts, one per line in $DOKKU_ROOT/VHOST (``domains:set-global``)."""
    from .paths import layout
    path = layout().dokku_root / "VHOST"
    return [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def apps_create(args):
    flags, pos = parse_flags("apps:create", args)
    if not pos:
        no_app()
    app = pos[0]
    if state.app_exists(app):
        fail("Name is already taken")
    if not state.APP_NAME.match(app):
        fail(APP_NAME_RULE)
    create_app(app)
    return 0


def apps_exists(args):
    if not args:
        no_app()
    state.require_app(args[0])
    return 0


def apps_list(args):
    parse_flags("apps:list", args, values=("--format",),
                usage=['      --format string   format: [ stdout | json ] (default "stdout")'])
    apps = state.list_apps()
    if not quiet():
        info2("My Apps")
    if not apps:
        warn("You haven't deployed any applications yet")
    for app in apps:
        out(app)
    return 0


def _app_report_rows(app):
    data = state.load_app(app)
    from .paths import layout
    rows = {
        "app-created-at": data["created_at"],
        "app-deploy-source": "git-from-image" if data["deploy"]["source_image"] else "",
        "app-deploy-source-metadata": data["deploy"]["source_image"] or "",
        "app-dir": str(layout().app_dir(app)),
        "app-global-disable-autocreation": "",
        "app-locked": "false",
    }
    json_rows = dict(rows)
    json_rows.update({k[len("app-"):]: v for k, v in rows.items()})
    return rows, json_rows


def apps_report(args):
    pos = [a for a in args if not a.startswith("--")]
    fmt_json = "--format" in args and "json" in args
    if not pos:
        for app in state.list_apps():
            rows, json_rows = _app_report_rows(app)
            report(app, "app information", rows, json_rows, ["--format", "json"] if fmt_json else [])
        return 0
    app = state.require_app(pos[0])
    rows, json_rows = _app_report_rows(app)
    rest = [a for a in args if a != app]
    report(app, "app information", rows, json_rows, rest)
    return 0


def apps_destroy(args):
    flags, pos = parse_flags("apps:destroy", args, bools=("--force", "-f"))
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    force = flags.get("--force") or flags.get("-f") or os.environ.get("DOKKU_APPS_FORCE_DELETE") == "1"
    if not force:
        warn("WARNING: Potentially Destructive Action")
        warn(f"This command will destroy app {app}.")
        warn(f'To proceed, type "{app}"')
        out("> ", end="")
        import sys
        line = sys.stdin.readline()
        if not line:
            fail("EOF")
        if line.strip() != app:
            err("Confirmation did not match test. Aborted.")
            raise DokkuExit(1)
    destroy_app(app)
    return 0


def destroy_app(app: str) -> None:
    """What ``apps:destroy`` does once confirmed (also the middle step of ``apps:rename``):
    ``pre-delete`` (a failure aborts with rc 1), containers and image removed, state deleted,
    ``post-delete``."""
    if not quiet():
        info1(f"Destroying {app} (including all add-ons)")
    if triggers.fire("pre-delete", [app, "latest"]) != 0:
        raise DokkuExit(1)
    from . import deploy
    info1("Cleaning up...")
    info1("Retiring old containers and images")
    deploy.remove_app_containers(app)
    deploy.remove_app_image(app)
    state.delete_app_state(app)
    triggers.fire("post-delete", [app, "latest"], stop_on_error=False)


# ---- apps:rename / apps:clone ---------------------------------------------------------------

def _old_new(cmd: str, args: list[str], bools: tuple[str, ...]):
    """Dokku's checks, in its order: OLD given, NEW given, OLD exists (rc 20), NEW a valid name."""
    flags, pos = parse_flags(cmd, args, bools=bools)
    old = pos[0] if pos else ""
    new = pos[1] if len(pos) > 1 else ""
    if not old:
        no_app()
    if not new:
        fail("Please specify an new app name")
    state.require_app(old)
    if not state.APP_NAME.match(new):
        fail(APP_NAME_RULE)
    return flags, old, new


def copy_app_dir(old: str, new: str) -> None:
    """The app directory's copy: NEW's env becomes exactly OLD's (NO_VHOST, GIT_REV and links'
    URLs included; no ``post-config-update`` fires), and the checks lists, which Dokku keeps in
    the env (``DOKKU_CHECKS_DISABLED`` / ``DOKKU_CHECKS_SKIPPED``), follow it."""
    env = state.get_config(old)
    with state.edit_config(new) as cfg:
        cfg.clear()
        cfg.update(env)
    checks = copy.deepcopy(state.load_app(old)["checks"])
    with state.edit_app(new) as data:
        data["checks"] = checks


def apps_rename(args):
    flags, old, new = _old_new("apps:rename", args, ("--skip-deploy",))
    if state.app_exists(new):
        fail("Name is already taken")
    if not quiet():
        info1(f"Renaming {old} to {new}")
    if create_app(new) != 0:
        raise DokkuExit(1)
    copy_app_dir(old, new)
    if triggers.fire("post-app-rename-setup", [old, new]) != 0:
        raise DokkuExit(1)
    os.environ["DOKKU_APPS_FORCE_DELETE"] = "1"  # Dokku sets it in its own env: later triggers see it
    destroy_app(old)
    if flags.get("--skip-deploy"):
        os.environ["SKIP_REBUILD"] = "true"
    if triggers.fire("post-app-rename", [old, new]) != 0:
        raise DokkuExit(1)
    return 0


def apps_clone(args):
    flags, old, new = _old_new("apps:clone", args, ("--skip-deploy", "--ignore-existing"))
    if state.app_exists(new):
        if flags.get("--ignore-existing"):
            warn("Name is already taken")
            return 0
        fail("Name is already taken")
    if not quiet():
        info1(f"Cloning {old} to {new}")
    if create_app(new) != 0:
        raise DokkuExit(1)
    copy_app_dir(old, new)
    if triggers.fire("post-app-clone-setup", [old, new]) != 0:
        raise DokkuExit(1)
    if flags.get("--skip-deploy"):
        os.environ["SKIP_REBUILD"] = "true"
    if triggers.fire("post-app-clone", [old, new]) != 0:
        raise DokkuExit(1)
    return 0


# The core plugins' post-app-rename-setup / post-app-clone-setup providers, each under its real
# plugin name (so a plugin's own provider runs between them in plugn's name order): which part of
# the app each one copies from OLD to NEW (dotted = nested key of harness-app.json).
SETUP_COPIES = {
    "app-json": ("deploy.app_json",),
    "apps": ("created_at",),
    "docker-options": ("docker_options",),
    "git": ("deploy.source_image", "deploy.git_rev"),
    "network": ("network",),
    "ports": ("ports",),
    "ps": ("deploy.restore",),
    "resource": ("resource",),
    "storage": ("storage",),
}


def _setup_copier(keys: tuple[str, ...]):
    def provider(args):
        if len(args) < 2 or not state.app_exists(args[0]) or not state.app_exists(args[1]):
            return 0
        src = state.load_app(args[0])
        with state.edit_app(args[1]) as data:
            for key in keys:
                *parents, leaf = key.split(".")
                s_node, d_node = src, data
                for part in parents:
                    s_node, d_node = s_node[part], d_node[part]
                d_node[leaf] = copy.deepcopy(s_node[leaf])
        return 0
    return provider


for _plugin, _keys in SETUP_COPIES.items():
    for _trigger in ("post-app-rename-setup", "post-app-clone-setup"):
        triggers.builtin(_trigger, _plugin)(_setup_copier(_keys))


@triggers.builtin("post-app-rename-setup", "domains")
def _domains_rename_setup(args):
    """Rename keeps OLD's domains, turning only ``OLD.<global vhost>`` into ``NEW.<global vhost>``
    (0.27 migration guide)."""
    if len(args) < 2 or not state.app_exists(args[0]) or not state.app_exists(args[1]):
        return 0
    old, new = args[0], args[1]
    src = state.load_app(old)
    renamed = {f"{old}.{vhost}": f"{new}.{vhost}" for vhost in global_vhosts()}
    with state.edit_app(new) as data:
        data["domains"] = [renamed.get(domain, domain) for domain in src["domains"]]
        data["vhost_enabled"] = src["vhost_enabled"]
    return 0


@triggers.builtin("post-app-clone-setup", "domains")
def _domains_clone_setup(args):
    """Clone does not copy domains: NEW keeps what apps:create gave it (``NEW.<global vhost>``, or
    none); whether its vhost is enabled follows the NO_VHOST it got with OLD's env."""
    if len(args) < 2 or not state.app_exists(args[1]):
        return 0
    no_vhost = state.get_config(args[1]).get("NO_VHOST", "1")
    with state.edit_app(args[1]) as data:
        data["domains"] = [f"{args[1]}.{vhost}" for vhost in global_vhosts()]
        data["vhost_enabled"] = no_vhost == "0"
    return 0


@triggers.builtin("post-app-rename", "ps")
@triggers.builtin("post-app-clone", "ps")
def _ps_rebuild_new_app(args):
    """ps rebuilds NEW (``receive-app``) unless ``SKIP_REBUILD=true``; an app with no source to
    build from (never deployed) is skipped silently, as git's receive-app does without a repo."""
    if os.environ.get("SKIP_REBUILD") == "true" or len(args) < 2 or not state.app_exists(args[1]):
        return 0
    if not state.load_app(args[1])["deploy"]["source_image"]:
        return 0
    from . import deploy
    return deploy.rebuild(args[1])


# ---- ports --------------------------------------------------------------------------------

def _validate_maps(maps):
    for m in maps:
        parts = m.split(":")
        if len(parts) != 3:
            fail(f"Invalid port map {m} [len={len(parts)}]")
        if not parts[1].isdigit() or not parts[2].isdigit():
            fail(f"Invalid port map {m}")


def _refuse_reuse(maps, which):
    """reusesSchemeHostPort: one mapping per scheme:host-port (an identical map is reused too)."""
    seen = set()
    for m in maps:
        key = ":".join(m.split(":")[:2])
        if key in seen:
            fail(f"Error validating {which}port mappings: The same scheme:host-port is being reused: {key}")
        seen.add(key)


def _map_json(maps):
    items = []
    for m in maps:
        scheme, host, ctr = m.split(":")
        items.append({"container_port": int(ctr), "host_port": int(host), "scheme": scheme})
    return json.dumps(items, separators=(",", ":"), sort_keys=True)


def ports_set(args, *, add=False):
    cmd = "ports:add" if add else "ports:set"
    _, pos = parse_flags(cmd, args)
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    maps = pos[1:]
    if not maps:
        fail("No port mappings specified")
    _validate_maps(maps)
    _refuse_reuse(maps, "new " if add else "")
    with state.edit_app(app) as data:
        if add:
            _refuse_reuse(data["ports"] + maps, "all ")
        # setPortMaps (plugins/ports/functions.go): the stored list is sorted with Go's sort.Strings
        # and holds each map once.
        data["ports"] = sorted(set((data["ports"] + maps) if add else maps))
    triggers.fire("post-proxy-ports-update", [app, "add" if add else "set"], stop_on_error=False)
    return 0


def ports_clear(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    with state.edit_app(app) as data:
        data["ports"] = []
    triggers.fire("post-proxy-ports-update", [app, "clear"], stop_on_error=False)
    return 0


def ports_remove(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    with state.edit_app(app) as data:
        data["ports"] = [m for m in data["ports"] if m not in args[1:]
                         and m.split(":")[1] not in args[1:]]
    triggers.fire("post-proxy-ports-update", [app, "remove"], stop_on_error=False)
    return 0


def ports_list(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    maps = state.load_app(app)["ports"]
    if not maps:
        fail("No port mappings configured for app")
    if not quiet():
        info1(f"Port mappings for {app}")
        out("    -----> scheme  host port  container port")
        for m in maps:
            s, h, c = m.split(":")
            out(f"    {s.ljust(15)}{h.ljust(11)}{c}")
    else:
        for m in maps:
            s, h, c = m.split(":")
            out(f"    {s}  {h}  {c}")
    return 0


def detected_ports(app) -> list[str]:
    from . import certs, deploy
    exposed = deploy.image_exposed_ports(app)
    detected = [f"http:{p}:{p}" for p in exposed] if exposed else ["http:80:5000"]
    return certs.detected_with_certs(app, detected)


def ports_report(args):
    if not args or args[0].startswith("--"):
        no_app()
    app = state.require_app(args[0])
    maps = state.load_app(app)["ports"]
    det = detected_ports(app)
    base = {
        "map": " ".join(maps), "map-detected": " ".join(det),
        "map-detected-json": _map_json(det), "map-json": _map_json(maps) if maps else "[]",
    }
    rows = {f"ports-{k}": v for k, v in base.items()}
    json_rows = dict(rows)
    json_rows.update(base)
    report(app, "ports information", rows, json_rows, args[1:])
    return 0


# ---- domains ------------------------------------------------------------------------------

def _domains_args(cmd, args):
    _, pos = parse_flags(cmd, args)
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    for d in pos[1:]:
        if not DOMAIN.match(d):
            fail(f"{d} is invalid. exiting...")
    return app, pos[1:]


def _enable_vhost(app):
    with state.edit_config(app) as cfg:
        cfg["NO_VHOST"] = "0"
    triggers.fire("post-config-update", [app, "set", "NO_VHOST"], quiet=True, stop_on_error=False)
    with state.edit_app(app) as data:
        data["vhost_enabled"] = True
    triggers.fire("post-domains-update", [app, "enable"], stop_on_error=False)


def domains_set(args):
    app, domains = _domains_args("domains:set", args)
    if not domains:
        fail("Please specify a domain name")
    _enable_vhost(app)
    with state.edit_app(app) as data:
        data["domains"] = list(domains)
        data["ports"] = []  # the 0.38.27 trap: domains:set empties the ports map
    info1(f"Set {' '.join(domains)} for {app}")
    triggers.fire("post-domains-update", [app, "set", *domains], stop_on_error=False)
    return 0


def domains_add(args):
    app, domains = _domains_args("domains:add", args)
    if not domains:
        fail("Please specify a domain name")
    if not state.load_app(app)["vhost_enabled"]:
        _enable_vhost(app)
    with state.edit_app(app) as data:
        data["domains"] += [d for d in domains if d not in data["domains"]]
    for d in domains:
        info1(f"Added {d} to {app}")
    triggers.fire("post-domains-update", [app, "add", *domains], stop_on_error=False)
    return 0


def domains_clear(args):
    app, _ = _domains_args("domains:clear", args)
    with state.edit_app(app) as data:
        data["domains"] = []
    info1(f"Cleared domains in {app}")
    triggers.fire("post-domains-update", [app, "clear"], stop_on_error=False)
    return 0


def domains_set_global(args):
    _, domains = parse_flags("domains:set-global", args)
    if not domains:
        fail("Please specify a global domain name")
    for d in domains:
        if not DOMAIN.match(d):
            fail(f"{d} is invalid. exiting...")
    from .paths import layout
    (layout().dokku_root / "VHOST").write_text("".join(d + "\n" for d in domains))
    info1(f"Set {' '.join(domains)}")
    return 0


def domains_clear_global(args):
    parse_flags("domains:clear-global", args)
    from .paths import layout
    (layout().dokku_root / "VHOST").unlink(missing_ok=True)
    info1("Cleared global domains")
    return 0


def domains_report(args):
    if not args or args[0].startswith("--"):
        no_app()
    app = state.require_app(args[0])
    data = state.load_app(app)
    base = {"app-enabled": "true" if data["vhost_enabled"] else "false",
            "app-vhosts": " ".join(data["domains"]), "global-enabled": "true" if global_vhosts() else "false",
            "global-vhosts": " ".join(global_vhosts())}
    rows = {f"domains-{k}": v for k, v in base.items()}
    report(app, "domains information", rows, base, args[1:])
    return 0


# ---- resource -----------------------------------------------------------------------------

RESOURCE_KEYS = ("cpu", "memory", "memory-swap", "network", "network-ingress", "network-egress", "nvidia-gpus")


def resource_limit(args):
    flags, pos = parse_flags("resource:limit", args, bools=(),
                            values=("--process-type",) + tuple(f"--{k}" for k in RESOURCE_KEYS))
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    ptype = flags.pop("--process-type", "_default_")
    header = f"Setting resource limits for {app}" + ("" if ptype == "_default_" else f" ({ptype})")
    with state.edit_app(app) as data:
        limits = data["resource"].setdefault(ptype, {})
        for flag, value in flags.items():
            limits[flag[2:]] = value
    info2(header)
    for flag, value in flags.items():
        verbose(f"{flag[2:]}: {value}")
    return 0


def resource_limit_clear(args):
    flags, pos = parse_flags("resource:limit-clear", args, values=("--process-type",))
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    with state.edit_app(app) as data:
        data["resource"].pop(flags.get("--process-type", "_default_"), None)
    info2(f"Clearing resource limit for {app}")
    return 0


def resource_report(args):
    if not args or args[0].startswith("--"):
        no_app()
    app = state.require_app(args[0])
    data = state.load_app(app)
    base = {}
    for ptype, limits in data["resource"].items():
        for k, v in limits.items():
            base[f"{ptype}.limit.{k}"] = v
    rows = {f"resource-{k}": v for k, v in base.items()}
    rest = args[1:]
    single = [a for a in rest if a.startswith("--") and a != "--format" and not a.startswith("--format=")]
    if single or "--format" in rest or any(a.startswith("--format=") for a in rest):
        json_rows = dict(rows)
        json_rows.update(base)
        report(app, "resource information", rows, json_rows, rest)
        return 0
    labels = {k: k.replace("-", " ").replace(".", " ") + ":" for k in rows}
    width = max([30] + [len(v) for v in labels.values()]) + 1
    if not quiet():
        info2(f"{app} resource information")
    for k in sorted(rows, key=lambda k: labels[k]):
        verbose(labels[k].ljust(width) + rows[k])
    return 0


def memory_bytes(app: str, ptype: str = "web") -> str | None:
    res = state.load_app(app)["resource"]
    return res.get(ptype, {}).get("memory") or res.get("_default_", {}).get("memory")


# ---- storage ------------------------------------------------------------------------------

def _storage_entry(cmd, args):
    _, pos = parse_flags(cmd, args)
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    if len(pos) < 2:
        fail("Please specify a mount path")
    entry = pos[1]
    if not re.match(r"^/[^:]*:/", entry):
        fail(f'storage entry "{entry}" does not exist; create it first with `dokku storage:create`')
    return app, entry


def storage_mount(args):
    app, entry = _storage_entry("storage:mount", args)
    with state.edit_app(app) as data:
        if entry in data["storage"]:
            fail("Mount path already exists.")
        data["storage"].append(entry)
    return 0


def storage_unmount(args):
    app, entry = _storage_entry("storage:unmount", args)
    with state.edit_app(app) as data:
        if entry not in data["storage"]:
            fail("Mount path does not exist.")
        data["storage"].remove(entry)
    return 0


def storage_list(args):
    flags, pos = parse_flags("storage:list", args, values=("--format",))
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    mounts = state.load_app(app)["storage"]
    if flags.get("--format") == "json":
        items = []
        for m in mounts:
            host, ctr = m.split(":", 2)[:2]
            items.append({"entry_name": "legacy-" + hashlib.sha256(host.encode()).hexdigest()[:10],
                          "host_path": host, "container_path": ctr})
        out(json.dumps(items, separators=(",", ":")))
        return 0
    info1(f"{app} volume bind-mounts:")
    for m in mounts:
        verbose(m)
    return 0


def storage_report(args):
    if not args or args[0].startswith("--"):
        no_app()
    app = state.require_app(args[0])
    rows = {}
    for i, m in enumerate(state.load_app(app)["storage"], 1):
        host, ctr = m.split(":", 2)[:2]
        prefix = f"storage-attachment-{i}-"
        rows.update({prefix + "container-path": ctr,
                     prefix + "entry-name": "legacy-" + hashlib.sha256(host.encode()).hexdigest()[:10],
                     prefix + "host-path": host, prefix + "phases": "deploy,run",
                     prefix + "process-type": "_default_", prefix + "readonly": "false", prefix + "subpath": "",
                     prefix + "volume-chown": "", prefix + "volume-options": ""})
    mounts = " ".join(f"-v {m}" for m in state.load_app(app)["storage"])
    rows.update({"storage-build-mounts": "", "storage-deploy-mounts": mounts, "storage-run-mounts": mounts})
    report(app, "storage information", rows, None, args[1:])
    return 0


def storage_ensure_directory(args):
    from .paths import layout
    if not args:
        fail("Please specify a name for the directory")
    path = layout().data / "storage" / args[0]
    warn("Deprecated: please use 'storage:create' instead of 'storage:ensure-directory'")
    path.mkdir(parents=True, exist_ok=True)
    info1(f"Ensuring {path} exists")
    verbose("Setting directory ownership to 32767:32767")
    import os
    try:
        os.chown(path, 32767, 32767)
    except PermissionError:
        pass
    verbose("Directory ready for mounting")
    return 0


# ---- docker-options -----------------------------------------------------------------------

PHASES = ("build", "deploy", "run")


def docker_options_add(args):
    if len(args) < 3:
        fail("Please specify an app, phase(s) and option")
    app = state.require_app(args[0])
    phases = args[1].split(",")
    for p in phases:
        if p not in PHASES:
            fail(f"Phase must be one of {','.join(PHASES)}")
    option = " ".join(args[2:])
    with state.edit_app(app) as data:
        for p in phases:
            if option not in data["docker_options"][p]:
                data["docker_options"][p].append(option)
    return 0


def docker_options_remove(args):
    if len(args) < 3:
        fail("Please specify an app, phase(s) and option")
    app = state.require_app(args[0])
    option = " ".join(args[2:])
    with state.edit_app(app) as data:
        for p in args[1].split(","):
            if option in data["docker_options"].get(p, []):
                data["docker_options"][p].remove(option)
    return 0


def docker_options_clear(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    phases = args[1].split(",") if len(args) > 1 else list(PHASES)
    with state.edit_app(app) as data:
        for p in phases:
            data["docker_options"][p] = []
    return 0


def docker_options_list(args):
    """``docker-options:list <app> [--process PROC] --phase PHASE`` (Dokku 0.38.27 docs): the options
    of one phase, one a line, nothing when there are none. Process scopes are not modelled (the
    default scope is the only one)."""
    flags, pos = parse_flags("docker-options:list", args, values=("--phase", "--process"))
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    phase = flags.get("--phase")
    if phase not in PHASES:
        fail(f"Phase must be one of {','.join(PHASES)}")
    for option in state.load_app(app)["docker_options"][phase]:
        out(option)
    return 0


def docker_options_report(args):
    if not args or args[0].startswith("--"):
        no_app()
    app = state.require_app(args[0])
    opts = state.load_app(app)["docker_options"]
    rows = {f"docker-options-{p}": " ".join(opts[p]) for p in PHASES}
    report(app, "docker-options information", rows, None, args[1:])
    return 0


# ---- checks -------------------------------------------------------------------------------

def _checks_set(args, key, verb):
    if not args:
        no_app()
    app = state.require_app(args[0])
    procs = args[1].split(",") if len(args) > 1 else ["_all_"]
    with state.edit_app(app) as data:
        other = "disabled" if key == "skipped" else "skipped"
        if key:
            data["checks"][key] = sorted(set(data["checks"][key]) | set(procs))
            data["checks"][other] = [p for p in data["checks"][other] if p not in procs]
        else:
            for k in ("skipped", "disabled"):
                data["checks"][k] = [p for p in data["checks"][k] if p not in procs]
    info1(f"{verb} zero downtime for app's ({app}) proctypes ({','.join(procs)})")
    return 0


def checks_report(args):
    if not args or args[0].startswith("--"):
        no_app()
    app = state.require_app(args[0])
    c = state.load_app(app)["checks"]
    base = {"computed-wait-to-retire": "60", "disabled-list": ",".join(c["disabled"]) or "none",
            "global-wait-to-retire": "", "skipped-list": ",".join(c["skipped"]) or "none",
            "wait-to-retire": ""}
    rows = {f"checks-{k}": v for k, v in base.items()}
    report(app, "checks information", rows, base, args[1:])
    return 0


def checks_run(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    from . import deploy
    return deploy.run_checks_on_current(app)


# ---- network ------------------------------------------------------------------------------

def network_report(args):
    if not args or args[0].startswith("--"):
        no_app()
    app = state.require_app(args[0])
    from . import deploy
    bind = "true" if state.load_app(app)["network"]["bind_all_interfaces"] else "false"
    base = {k: "" for k in ("attach-post-create", "attach-post-deploy", "computed-attach-post-create",
                            "computed-attach-post-deploy", "computed-initial-network", "computed-tld",
                            "global-attach-post-create", "global-attach-post-deploy",
                            "global-bind-all-interfaces", "global-initial-network", "global-tld",
                            "initial-network", "static-web-listener", "tld")}
    base.update({"bind-all-interfaces": bind, "computed-bind-all-interfaces": bind,
                 "web-listeners": deploy.web_listener(app)})
    rows = {f"network-{k}": v for k, v in base.items()}
    json_rows = dict(rows)
    json_rows.update(base)
    report(app, "network information", rows, json_rows, args[1:])
    return 0


def network_set(args):
    if len(args) < 2:
        fail("Please specify an app and a property")
    app = state.require_app(args[0])
    prop, value = args[1], (args[2] if len(args) > 2 else "")
    with state.edit_app(app) as data:
        if prop == "bind-all-interfaces":
            data["network"]["bind_all_interfaces"] = value == "true"
        else:
            data["network"][prop] = value
    info2(f"Setting {prop} to {value}" if value else f"Unsetting {prop}")
    return 0


def network_list(args):
    import subprocess
    if not quiet():
        info2("Networks")
    names = subprocess.run(["docker", "network", "ls", "--format", "{{.Name}}"], capture_output=True,
                           text=True).stdout.split()
    for n in sorted(names):
        out(n)
    return 0


# ---- nginx / app-json (letsencrypt: certs.py) ----------------------------------------------

def nginx_reload(args):
    from .paths import layout
    with state.locked():
        path = layout().lib / "data" / "nginx-reloads"
        count = int(path.read_text()) if path.exists() else 0
        path.write_text(str(count + 1))
    from . import nginx
    return nginx.reload_proxy()


def app_json_report(args):
    if not args or args[0].startswith("--"):
        no_app()
    app = state.require_app(args[0])
    base = {"appjson-path": "", "computed-appjson-path": "app.json", "global-appjson-path": ""}
    rows = {f"app-json-{k}": v for k, v in base.items()}
    json_rows = dict(rows)
    json_rows.update(base)
    report(app, "app-json information", rows, json_rows, args[1:])
    return 0


COMMANDS = {
    "apps:create": apps_create, "apps:exists": apps_exists, "apps:list": apps_list,
    "apps:report": apps_report, "apps:destroy": apps_destroy, "apps:rename": apps_rename,
    "apps:clone": apps_clone,
    "ports:set": ports_set, "ports:add": lambda a: ports_set(a, add=True), "ports:clear": ports_clear,
    "ports:remove": ports_remove, "ports:list": ports_list, "ports:report": ports_report,
    "domains:set": domains_set, "domains:add": domains_add, "domains:clear": domains_clear,
    "domains:report": domains_report, "domains:set-global": domains_set_global,
    "domains:clear-global": domains_clear_global,
    "resource:limit": resource_limit, "resource:limit-clear": resource_limit_clear,
    "resource:report": resource_report,
    "storage:mount": storage_mount, "storage:unmount": storage_unmount, "storage:list": storage_list,
    "storage:report": storage_report,
    "storage:ensure-directory": storage_ensure_directory,
    "docker-options:add": docker_options_add, "docker-options:remove": docker_options_remove,
    "docker-options:clear": docker_options_clear, "docker-options:report": docker_options_report,
    "docker-options:list": docker_options_list,
    "checks:skip": lambda a: _checks_set(a, "skipped", "Skipping"),
    "checks:disable": lambda a: _checks_set(a, "disabled", "Disabling"),
    "checks:enable": lambda a: _checks_set(a, None, "Enabling"),
    "checks:report": checks_report, "checks:run": checks_run,
    "network:report": network_report, "network:set": network_set, "network:list": network_list,
    "nginx:reload": nginx_reload,
    "app-json:report": app_json_report,
}
