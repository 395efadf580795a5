"""``apps:*``, ``ports:*``, ``domains:*``, ``resource:*``, ``storage:*``, ``docker-options:*``,
``checks:*``, ``network:*``, ``letsencrypt:*``, ``nginx:*`` (facts: dokku-transcripts.md).

Modelled where the transcripts are silent (documented Dokku behaviour, simplified):
- ``ports:add``/``ports:clear``/``ports:remove`` fire ``post-proxy-ports-update APP add|clear|remove``.
- ``domains:add`` prints ``-----> Added DOMAIN to APP``, ``domains:clear`` ``-----> Cleared domains
  in APP``; only ``domains:set`` clears the ports map (the trap recorded on 0.38.27).
- ``checks:disable|enable`` print ``-----> Disabling|Enabling zero downtime for app's (APP)
  proctypes (web)``.
- ``letsencrypt:enable`` prints ``=====> Let's Encrypt APP`` / ``-----> Certificate retrieved
  successfully.``, records TLS on; ``nginx:reload`` prints nothing and is counted.
- ``network:report`` lists the fields of the transcript; only ``bind-all-interfaces`` is settable.
"""
from __future__ import annotations

import hashlib
import json
import re

from . import state, triggers
from .output import (DokkuExit, err, fail, info1, info2, no_app, out, parse_flags, quiet, report,
                     verbose, warn)

DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9*]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$",
                    re.IGNORECASE)


# ---- apps ---------------------------------------------------------------------------------

def apps_create(args):
    flags, pos = parse_flags("apps:create", args)
    if not pos:
        no_app()
    app = pos[0]
    if state.app_exists(app):
        fail("Name is already taken")
    if not state.APP_NAME.match(app):
        fail("App name must begin with lowercase alphanumeric character, and may only contain "
             "lowercase alphanumerics, dots, and hyphens")
    state.create_app(app)
    if not quiet():
        info1(f"Creating {app}...")
        info1("Global server virtual host not set, disabling app vhost...")
    with state.edit_config(app) as cfg:
        cfg["NO_VHOST"] = "1"
    triggers.fire("post-config-update", [app, "set", "NO_VHOST"], quiet=True, stop_on_error=False)
    triggers.fire("post-domains-update", [app, "disable"], stop_on_error=False)
    triggers.fire("post-create", [app])
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
    import os
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
    return 0


# ---- ports --------------------------------------------------------------------------------

def _validate_maps(maps):
    for m in maps:
        parts = m.split(":")
        if len(parts) != 3:
            fail(f"Invalid port map {m} [len={len(parts)}]")
        if not parts[1].isdigit() or not parts[2].isdigit():
            fail(f"Invalid port map {m}")


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
    with state.edit_app(app) as data:
        data["ports"] = (data["ports"] + [m for m in maps if m not in data["ports"]]) if add else maps
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
    from . import deploy
    exposed = deploy.image_exposed_ports(app)
    if exposed:
        return [f"http:{p}:{p}" for p in exposed]
    return ["http:80:5000"]


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


def domains_report(args):
    if not args or args[0].startswith("--"):
        no_app()
    app = state.require_app(args[0])
    data = state.load_app(app)
    base = {"app-enabled": "true" if data["vhost_enabled"] else "false",
            "app-vhosts": " ".join(data["domains"]), "global-enabled": "false", "global-vhosts": ""}
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


# ---- letsencrypt / nginx / app-json --------------------------------------------------------

def letsencrypt_enable(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    with state.edit_app(app) as data:
        data["letsencrypt"] = True
        data["letsencrypt_enables"] = data.get("letsencrypt_enables", 0) + 1
    info2(f"Let's Encrypt {app}")
    info1("Certificate retrieved successfully.")
    return 0


def letsencrypt_disable(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    with state.edit_app(app) as data:
        data["letsencrypt"] = False
    info1(f"Disabling letsencrypt for app {app}")
    return 0


def letsencrypt_active(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    out("true" if state.load_app(app)["letsencrypt"] else "false")
    return 0


def nginx_reload(args):
    from .paths import layout
    with state.locked():
        path = layout().lib / "data" / "nginx-reloads"
        count = int(path.read_text()) if path.exists() else 0
        path.write_text(str(count + 1))
    return 0


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
    "apps:report": apps_report, "apps:destroy": apps_destroy,
    "ports:set": ports_set, "ports:add": lambda a: ports_set(a, add=True), "ports:clear": ports_clear,
    "ports:remove": ports_remove, "ports:list": ports_list, "ports:report": ports_report,
    "domains:set": domains_set, "domains:add": domains_add, "domains:clear": domains_clear,
    "domains:report": domains_report,
    "resource:limit": resource_limit, "resource:limit-clear": resource_limit_clear,
    "resource:report": resource_report,
    "storage:mount": storage_mount, "storage:unmount": storage_unmount, "storage:list": storage_list,
    "storage:report": storage_report,
    "storage:ensure-directory": storage_ensure_directory,
    "docker-options:add": docker_options_add, "docker-options:remove": docker_options_remove,
    "docker-options:clear": docker_options_clear, "docker-options:report": docker_options_report,
    "checks:skip": lambda a: _checks_set(a, "skipped", "Skipping"),
    "checks:disable": lambda a: _checks_set(a, "disabled", "Disabling"),
    "checks:enable": lambda a: _checks_set(a, None, "Enabling"),
    "checks:report": checks_report, "checks:run": checks_run,
    "network:report": network_report, "network:set": network_set, "network:list": network_list,
    "letsencrypt:enable": letsencrypt_enable, "letsencrypt:disable": letsencrypt_disable,
    "letsencrypt:active": letsencrypt_active, "nginx:reload": nginx_reload,
    "app-json:report": app_json_report,
}
