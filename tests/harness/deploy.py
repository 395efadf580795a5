"""Deploys and restarts: ``git:from-image``, ``ps:*``, ``run``, ``logs`` (facts:
dokku-transcripts.md "checks:* / git:from-image / ps:*", "Finding the deployed container";
zero-downtime-on-dokku.md).

A deploy cycle starts ``APP.web.1.upcoming-<n>`` from ``dokku/APP:latest`` (a one-step
``docker build`` of ``FROM <source image>`` plus Dokku's labels) with the app's env, ``DYNO``,
``PORT``, deploy-phase docker options, storage mounts, memory limit and restart policy
``on-failure:10``, on the default bridge; runs the checks; then renames the old container to
``APP.web.1.<unix-ts>`` and the new one to ``APP.web.1``, sets the old one's restart policy to
``no`` and sends it SIGTERM; a detached job ``docker stop``s it after ``DOKKU_WAIT_TO_RETIRE``
seconds (default 60). Everything, errors included, goes to stdout.

Checks (only ``"type": "startup"`` entries of ``healthchecks.web`` in ``app.json`` at the image's
WORKDIR count, as with the local scheduler):
- path checks are probed from *inside* the new container with ``docker exec`` (node fetch,
  else python3, curl or wget) on ``127.0.0.1:<port>``: the harness never connects to a
  container IP. Real Dokku's checker connects from the host to the container IP, so an app that
  listens only on its container IP (not 0.0.0.0/localhost) would pass there and fail here.
- ``command`` checks run via ``docker exec``; an ``uptime: N`` check (a check of its own: with
  ``path``, ``command`` or ``listening`` it is invalid, Healthcheck.Validate) waits until the
  container has been up N whole seconds since its StartedAt, then requires it running with no
  restarts, once (``container state is not running``): so a container that dies within N
  seconds is never switched to. Checks run concurrently, ``initialDelay`` counts from the
  container's start, a failing ``warn: true`` check does not fail the deploy
  (docker-container-healthchecker 0.16 commands/check.go, appjson/healthcheck.go).
- no startup check: Dokku's default, the container must still run after
  ``DOKKU_DEFAULT_CHECKS_WAIT`` seconds (default 10; read from the harness process env, then the
  app's and the global config) with no restarts.
- ``checks:skip`` / ``checks:disable`` for web (or ``_all_``) skip / disable them.
- plugins' ``check-deploy`` trigger runs after the checks (a failure fails the deploy).
The check log lines (``Running healthcheck ...``, ``Healthcheck succeeded name='...'``,
`` !     Failure in name='...': ...``, `` !     Could not start due to N failed checks (web.1)``) model
docker-container-healthchecker 0.16; the transcripts only had a stub. On failure the new
container's output is printed between ``=====> Start/End of APP container output (web.1)`` (not
under ``DOKKU_QUIET_OUTPUT``: Dokku prints it with its ``_quiet`` loggers), the new container is
stopped with its restart policy off and left, named ``APP.web.1.upcoming-<n>``, for Dokku's retire
job (kill_new; the job itself is not modelled), the old one keeps running untouched, and the
command exits 1.

Also modelled: ``ps:restart``/``ps:rebuild`` of a never-deployed app fail with
`` !     App APP has not been deployed`` (stdout, rc 1); ``ps:start`` of a never-deployed app the same
on stderr; an app with checks in app.json prints nothing extra under "Processing deployment
checks"; an image missing on the host makes ``git:from-image`` print a pull error without trying
a registry (there is none here).
"""
from __future__ import annotations

import concurrent.futures
import datetime
import io
import json
import os
import random
import re
import socket
import subprocess
import sys
import tarfile
import threading
import time

from . import calllog, cron, nginx, state, triggers
from .output import (fail, info1, info2, no_app, out, parse_flags, quiet, report, verbose,
                     warn)
from .paths import ROOT_LABEL, TEST_LABEL, layout

WEB = "web.1"


def docker(*args, capture=True, input=None, env=None, check=False) -> subprocess.CompletedProcess:
    sys.stdout.flush()
    return subprocess.run(["docker", *args], capture_output=capture, text=True, input=input, env=env,
                          check=check)


def image_name(app: str) -> str:
    return f"dokku/{app}:latest"


def harness_labels() -> list[str]:
    return ["--label", f"{TEST_LABEL}=1", "--label", f"{ROOT_LABEL}={layout().root}"]


def inspect(ref: str) -> dict | None:
    res = docker("inspect", ref)
    if res.returncode != 0:
        return None
    data = json.loads(res.stdout)
    return data[0] if data else None


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref).returncode == 0


def is_deployed(app: str) -> bool:
    return bool(state.load_app(app)["deploy"]["deployed"])


def image_exposed_ports(app: str) -> list[int]:
    if not is_deployed(app):
        return []
    info = inspect(image_name(app))
    if not info:
        return []
    ports = (info.get("Config") or {}).get("ExposedPorts") or {}
    return sorted(int(p.split("/")[0]) for p in ports if p.endswith("/tcp"))


def container_port(app: str) -> str:
    from .apps import detected_ports
    maps = state.load_app(app)["ports"] or detected_ports(app)
    for m in maps:
        scheme, _host, ctr = m.split(":")
        if scheme != "udp":
            return ctr
    return "5000"


def web_listener(app: str) -> str:
    d = layout().app_dir(app)
    try:
        return f"{(d / 'IP.web.1').read_text().strip()}:{(d / 'PORT.web.1').read_text().strip()}"
    except FileNotFoundError:
        return ""


def current_container(app: str) -> dict | None:
    info = inspect(f"{app}.{WEB}")
    if info and info.get("Config", {}).get("Labels", {}).get("com.dokku.app-name") == app:
        return info
    return None


def app_url(app: str) -> str:
    data = state.load_app(app)
    host = data["domains"][0] if data["domains"] else socket.gethostname()
    for m in data["ports"]:
        scheme, hport, _ = m.split(":")
        if scheme in ("http", "https"):
            return f"{scheme}://{host}" if hport in ("80", "443") else f"{scheme}://{host}:{hport}"
    return f"http://{host}:{container_port(app)}"


def _config_value(app: str, key: str) -> str | None:
    return os.environ.get(key) or state.get_config(app).get(key) or state.get_config(None).get(key)


def _reason() -> str:
    rec = calllog.current()
    if not rec:
        return "unknown"
    argv = [a for a in rec["argv"] if not a.startswith("--")]
    if rec["tool"] == "plugn":
        return "plugn:" + (argv[1] if len(argv) > 1 else "")
    return argv[0] if argv else "dokku"


# ---- app.json -------------------------------------------------------------------------------

def copy_from_image(image: str, path: str) -> bytes | None:
    """Dokku's copy_from_image: a file at a path relative to the image's WORKDIR (never absolute),
    read through a created (never started) container; None when the image or file is missing."""
    info = inspect(image)
    if not info:
        return None
    workdir = (info.get("Config") or {}).get("WorkingDir") or "/"
    created = docker("container", "create", *harness_labels(), "--entrypoint", "/nonexistent", image)
    if created.returncode != 0:
        return None
    cid = created.stdout.strip()
    try:
        res = subprocess.run(["docker", "cp", f"{cid}:{workdir.rstrip('/')}/{path.lstrip('/')}", "-"],
                             capture_output=True)
        if res.returncode != 0:
            return None
        with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
            member = tar.next()
            fh = tar.extractfile(member) if member and member.isfile() else None
            return fh.read() if fh else None
    finally:
        docker("container", "rm", "-f", cid)


def extract_app_json(image: str) -> dict | None:
    raw = copy_from_image(image, "app.json")
    if raw is None:
        return None
    try:
        return json.loads(raw.decode())
    except ValueError:
        return None


def startup_checks(app_json: dict | None) -> list[dict]:
    if not app_json:
        return []
    web = (app_json.get("healthchecks") or {}).get("web") or []
    return [c for c in web if (c.get("type") or "startup") == "startup"]


# ---- checks ---------------------------------------------------------------------------------

_PROBES = {
    "node": lambda url, t: ["node", "-e",
                            "fetch(process.argv[1],{signal:AbortSignal.timeout(%d)}).then(r=>{if(r.ok)process.exit(0);"
                            "console.log('HTTP '+r.status);process.exit(1)}).catch(e=>{console.log(String(e.cause||e));"
                            "process.exit(1)})" % (int(t * 1000)), url],
    "python3": lambda url, t: ["python3", "-c",
                               "import sys,urllib.request\ntry:\n urllib.request.urlopen(sys.argv[1],timeout=%s)\n"
                               "except Exception as e:\n print(e);sys.exit(1)" % t, url],
    "curl": lambda url, t: ["curl", "-fsS", "-o", "/dev/null", "--max-time", str(t), url],
    "wget": lambda url, t: ["wget", "-q", "-T", str(int(t)), "-O", "/dev/null", url],
}


def _probe_tool(cid: str) -> str | None:
    for tool, cmd in (("node", ["node", "-e", "0"]), ("python3", ["python3", "-c", "0"]),
                      ("curl", ["curl", "--version"]), ("wget", ["wget", "--help"])):
        if docker("exec", cid, *cmd).returncode == 0:
            return tool
    return None


def _running(cid: str) -> tuple[bool, int]:
    info = inspect(cid)
    if not info:
        return False, 0
    return bool(info["State"].get("Running")) and not info["State"].get("Restarting"), info.get("RestartCount", 0)


def run_checks(app: str, cid: str, port: str, checks: list[dict]) -> int:
    """Run startup checks (or the default uptime check); return the number of failed checks.

    As docker-container-healthchecker 0.16 (commands/check.go, appjson/healthcheck.go): the checks
    run concurrently, each after its ``initialDelay`` counted from the container's start; a
    failing ``warn: true`` check does not count.
    """
    if not checks:
        wait = float(_config_value(app, "DOKKU_DEFAULT_CHECKS_WAIT") or 10)
        verbose(f"Running healthcheck name='default' type='uptime' uptime={wait:g}")
        time.sleep(wait)
        running, restarts = _running(cid)
        if not running or restarts:
            warn("App container failed to start!!", stdout=True)
            return 1
        verbose("Healthcheck succeeded name='default'")
        return 0
    started = _started_at(cid)
    tool: list = []
    tool_lock = threading.Lock()

    def probe_tool():
        with tool_lock:
            if not tool:
                tool.append(_probe_tool(cid))
            return tool[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(checks)) as pool:
        results = list(pool.map(lambda c: _run_check(cid, port, c, started, probe_tool), checks))
    return sum(1 for ok, check in zip(results, checks) if not ok and not check.get("warn"))


def _started_at(cid: str) -> float:
    """The container's State.StartedAt as a Unix time (Docker gives RFC 3339 with nanoseconds)."""
    text = ((inspect(cid) or {}).get("State") or {}).get("StartedAt") or ""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        return time.time()
    base = datetime.datetime.fromisoformat(match.group(1) + (match.group(3).replace("Z", "+00:00")))
    return base.timestamp() + float("0" + (match.group(2) or ".0")[:10])


def _check_kind(check: dict) -> str:
    """GetCheckType: listening, then command, then path, else uptime."""
    if check.get("listening"):
        return "listening"
    if check.get("command"):
        return "command"
    if check.get("path"):
        return "path"
    return "uptime"


def _check_invalid(name: str, check: dict) -> str | None:
    """Healthcheck.Validate(): an uptime goes on a check of its own."""
    uptime = int(check.get("uptime") or 0)
    if check.get("command"):
        if check.get("path"):
            return f"healthcheck name='{name}' cannot contain both a container 'command' to execute and an http 'path' to check"
        if uptime > 0:
            return f"healthcheck name='{name}' cannot contain both a container 'command' to execute and an 'uptime' seconds value"
        if check.get("listening"):
            return f"healthcheck name='{name}' cannot contain both a container 'command' to execute and a 'listening' true value"
    if check.get("path"):
        if uptime > 0:
            return f"healthcheck name='{name}' cannot contain both an http 'path' to check and an 'uptime' seconds value"
        if check.get("listening"):
            return f"healthcheck name='{name}' cannot contain both an http 'path' to check and a 'listening' true value"
    if uptime > 0 and check.get("listening"):
        return f"healthcheck name='{name}' cannot contain both an 'uptime' seconds value and a 'listening' true value"
    return None


def _run_check(cid: str, port: str, check: dict, started: float, probe_tool) -> bool:
    name = check.get("name") or "default"
    attempts = int(check.get("attempts", 3))
    wait = float(check.get("wait", 5))
    timeout = float(check.get("timeout", 5))
    cport = str(check.get("port") or port)
    kind = _check_kind(check)
    path = check.get("path") or "/"
    command = check.get("command")
    uptime = int(check.get("uptime") or 0)
    if kind == "uptime":
        verbose(f"Running healthcheck name='{name}' type='uptime' uptime={uptime}")
    else:
        verbose(f"Running healthcheck name='{name}' attempts={attempts} "
                + (f"path='{path}' port={cport} " if kind == "path" else "")
                + f"timeout={timeout:g} type='{kind}' wait={wait:g}")
    # processHealthcheck sleeps time.Duration(delay) * time.Second: whole seconds, truncated.
    delay = int(float(check.get("initialDelay", 0)) - (time.time() - started))
    if delay > 0:
        time.sleep(delay)
    invalid = _check_invalid(name, check)
    if invalid:
        warn(f"Failure in name='{name}': {invalid}", stdout=True)
        return False
    if kind == "uptime":
        # executeUptimeCheck: wait until the container has been up `uptime` whole seconds (the
        # elapsed time is truncated to seconds), then inspect it once: it must be running and
        # never restarted. No attempts: a container that died meanwhile fails the deploy.
        remaining = uptime - int(time.time() - started)
        if remaining > 0:
            time.sleep(remaining)
        info = inspect(cid) or {"State": {}}
        if not info["State"].get("Running") or info.get("RestartCount", 0) > 0:
            verbose(f"state={info['State'].get('Status', 'removed')}")  # the check's output
        if not info["State"].get("Running"):
            warn(f"Failure in name='{name}': container state is not running", stdout=True)
            return False
        if info.get("RestartCount", 0) > 0:
            warn(f"Failure in name='{name}': container has restarted {info['RestartCount']} times", stdout=True)
            return False
        verbose(f"Healthcheck succeeded name='{name}'")
        return True
    if kind == "listening":
        warn(f"Failure in name='{name}': listening checks are not modelled by the harness", stdout=True)
        return False
    for attempt in range(1, attempts + 1):
        running, restarts = _running(cid)
        if not running:
            error = "container is not running"
        else:
            if kind == "command":
                argv = command if isinstance(command, list) else ["sh", "-c", command]
            else:
                tool = probe_tool()
                if not tool:
                    warn(f"Failure in name='{name}': no http client (node, python3, curl, wget) in the image to probe with",
                         stdout=True)
                    return False
                argv = _PROBES[tool](f"http://127.0.0.1:{cport}{path}", timeout)
            try:
                res = subprocess.run(["docker", "exec", cid, *argv], capture_output=True, text=True,
                                     timeout=timeout + 10)
                error = None if res.returncode == 0 else (res.stdout + res.stderr).strip() or f"exit {res.returncode}"
            except subprocess.TimeoutExpired:
                error = "timeout"
        if error is None:
            verbose(f"Healthcheck succeeded name='{name}'")
            return True
        # Retries are silent (its resty logger drops "..., Attempt N" errors): one Failure line,
        # with the last error, once the attempts are spent.
        if attempt < attempts:
            time.sleep(wait)
    warn(f"Failure in name='{name}': {error}", stdout=True)
    return False


def _checks_mode(app: str) -> str:
    c = state.load_app(app)["checks"]
    if {"web", "_all_"} & set(c["disabled"]):
        return "disabled"
    if {"web", "_all_"} & set(c["skipped"]):
        return "skipped"
    return "enabled"


# ---- containers -----------------------------------------------------------------------------

def _docker_options(app: str, phase: str) -> list[str]:
    import shlex
    opts = []
    for o in state.load_app(app)["docker_options"][phase]:
        opts.extend(shlex.split(o))
    return opts


def _env_args(app: str) -> tuple[list[str], dict]:
    cfg = dict(state.get_config(None))
    cfg.update(state.get_config(app))
    env = dict(os.environ)
    args = []
    for k, v in cfg.items():
        env[k] = v
        args += ["-e", k]
    return args, env


def _mount_args(app: str) -> list[str]:
    args = []
    for m in state.load_app(app)["storage"]:
        args += ["-v", m]
    return args


def _memory_args(app: str) -> list[str]:
    from .apps import memory_bytes
    mem = memory_bytes(app)
    return [f"--memory={mem}"] if mem else []


def start_container(app: str) -> tuple[str | None, str, str]:
    """Create and start ``APP.web.1.upcoming-<n>``; return (id, name, error)."""
    name = f"{app}.{WEB}.upcoming-{random.randint(1000, 32767)}"
    port = container_port(app)
    env_args, env = _env_args(app)
    publish = (["-p", f"127.0.0.1::{port}"]
               if state.load_app(app)["network"]["bind_all_interfaces"] else [])
    res = docker("container", "create", "--name", name, *harness_labels(),
                 "--label", f"com.dokku.app-name={app}", "--label", "com.dokku.process-type=web",
                 "--label", f"com.dokku.dyno={WEB}", "--label", "com.dokku.container-type=deploy",
                 "--restart=on-failure:10", *env_args, "-e", f"DYNO={WEB}", "-e", f"PORT={port}",
                 *_memory_args(app), *_mount_args(app), *_docker_options(app, "deploy"), *publish,
                 image_name(app), env=env)
    if res.returncode != 0:
        return None, name, res.stderr.strip()
    cid = res.stdout.strip()
    calllog.note_container("started", name)
    started = docker("container", "start", cid)
    if started.returncode != 0:
        return cid, name, started.stderr.strip()
    return cid, name, ""


def retire(app: str, cid: str) -> None:
    docker("container", "update", "--restart=no", cid)
    docker("container", "kill", "--signal=SIGTERM", cid)
    calllog.note_container("stopped", cid[:12])
    wait = os.environ.get("DOKKU_WAIT_TO_RETIRE", "60")
    subprocess.Popen(["sh", "-c", f"sleep {int(float(wait))}; docker container stop {cid} >/dev/null 2>&1"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


def _kill_new(app: str, cid: str) -> None:
    """scheduler-deploy-process-container's kill_new (0.38.27): the refused container is registered
    for retirement and listed in failed-containers, its restart policy is turned off, and it is
    stopped and killed, but not removed: it stays, stopped, as ``APP.web.1.upcoming-<n>`` until
    the retire job (not modelled: apps:destroy removes it)."""
    failed_list = layout().data / "scheduler-docker-local" / app / "failed-containers"
    failed_list.parent.mkdir(parents=True, exist_ok=True)
    with failed_list.open("a") as handle:
        handle.write(f"{cid} {WEB}\n")
    docker("container", "update", "--restart=no", cid)
    if docker("container", "stop", cid).returncode == 0:
        docker("container", "kill", cid)


def _dump_container_output(app: str, cid: str) -> None:
    """check-deploy's cleanup prints it with dokku_log_info2_quiet / dokku_container_log_verbose_quiet:
    nothing under DOKKU_QUIET_OUTPUT (the plugin's calls), as with the rest of the quiet output."""
    if quiet():
        return
    logs = docker("container", "logs", "--tail", "50", cid)
    info2(f"Start of {app} container output ({WEB})")
    for line in (logs.stdout + logs.stderr).splitlines():
        verbose(line)
    info2(f"End of {app} container output ({WEB})")


def _deploy_lock(app: str):
    """Serialise deploy cycles of one app (``/home/dokku/APP/.deploy.lock``). Real Dokku fails a
    concurrent ``git push`` with "APP currently has a deploy lock in place. Exiting..."; the
    harness waits instead (printing Dokku's "Waiting..." line), so parallel restarts in tests
    queue up rather than race on the ``APP.web.1`` name."""
    import fcntl
    fh = open(layout().app_dir(app) / ".deploy.lock", "a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        warn(f"{app} currently has a deploy lock in place. Waiting...", stdout=True)
        fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


def deploy_web(app: str, *, reason: str, kind: str) -> int:
    """Replace the web container, gated on checks. Returns 0 or 1."""
    lock = _deploy_lock(app)
    try:
        return _deploy_web(app, reason=reason, kind=kind, lock=lock)
    finally:
        lock.close()


def _deploy_web(app: str, *, reason: str, kind: str, lock) -> int:
    event = {"app": app, "reason": reason, "kind": kind, "started": time.time(),
             "image": image_name(app), "image_id": (inspect(image_name(app)) or {}).get("Id")}
    old = current_container(app)
    event["old"] = old["Id"] if old else None
    info1("Deploying web (count=1)")
    cid, name, error = start_container(app)
    event["new_name"] = name
    event["new"] = cid
    mode = _checks_mode(app)
    event["checks"] = mode
    failed = 0
    if error:
        warn(error, stdout=True)
        failed = 1
    else:
        if mode != "disabled":
            verbose(f"Attempting pre-flight checks ({WEB})")
        if mode == "skipped":
            if not quiet():
                info2(f"Zero downtime checks have been skipped ({WEB})")
        elif mode == "enabled":
            checks = startup_checks(state.load_app(app)["deploy"].get("app_json"))
            event["checks"] = "app.json" if checks else "default"
            failed = run_checks(app, cid, container_port(app), checks)
        if not failed:
            ip = (inspect(cid) or {}).get("NetworkSettings", {}).get("IPAddress", "")
            rc = triggers.fire("check-deploy", [app, cid, "web", container_port(app), ip, "1"])
            failed = 1 if rc else 0
    if failed:
        if cid:
            _dump_container_output(app, cid)
            _kill_new(app, cid)
            calllog.note_container("stopped", name)
        warn(f"Could not start due to {failed} failed checks ({WEB})", stdout=True)
        event.update(outcome="failed", ended=time.time())
        calllog.note_deploy(event)
        return 1
    if old:
        verbose(f"Scheduling old container shutdown in 60 seconds ({WEB})")
    info1("Running post-deploy")
    triggers.fire("core-post-deploy", [app, "", "", "latest"], stop_on_error=False)
    info1("Renaming containers")
    retired_name = None
    if old:
        retired_name = f"{app}.{WEB}.{int(time.time())}"
        # Two deploys within one second would pick the same retired name: the second rename
        # would then fail and leave the old container holding APP.web.1.
        suffix = 1
        while inspect(retired_name):
            retired_name = f"{app}.{WEB}.{int(time.time())}.{suffix}"
            suffix += 1
        if not quiet():
            verbose(f"Found previous container(s) ({old['Id'][:12]}) named {app}.{WEB}")
            verbose(f"Renaming container ({old['Id'][:12]}) {app}.{WEB} to {retired_name}")
        docker("container", "rename", old["Id"], retired_name)
    if not quiet():
        verbose(f"Renaming container {name} ({cid[:12]}) to {app}.{WEB}")
    docker("container", "rename", cid, f"{app}.{WEB}")
    info = inspect(cid) or {}
    state.write_dokku_file(app, f"CONTAINER.{WEB}", cid)
    state.write_dokku_file(app, f"IP.{WEB}", info.get("NetworkSettings", {}).get("IPAddress", ""))
    state.write_dokku_file(app, f"PORT.{WEB}", container_port(app))
    with state.edit_app(app) as data:
        data["deploy"]["deployed"] = True
        data["deploy"]["restore"] = True
    if nginx.proxy_info():  # scheduler-post-deploy-process: the proxy follows the new container
        info2("Triggering early nginx proxy rebuild")
        if nginx.build_config(app):
            warn("nginx failed to reload: requests still reach the previous container", stdout=True)
    info1("Checking for postdeploy task")
    verbose("No postdeploy task found, skipping")
    lock.close()  # a post-deploy hook may restart the app itself
    triggers.fire("post-deploy", [app, "", "", "latest"], stop_on_error=False)
    if old:
        retire(app, old["Id"])
        info1("Shutting down old containers in 60 seconds")
    event.update(outcome="deployed", ended=time.time(), new_name=f"{app}.{WEB}",
                 retired_name=retired_name)
    calllog.note_deploy(event)
    return 0


def release_and_deploy(app: str, *, reason: str | None = None, kind: str, first: bool = False) -> int:
    reason = reason or _reason()
    if not image_exists(image_name(app)):
        warn(f"App image ({image_name(app)}) not found", stdout=True)
        return 0
    triggers.fire("post-release-builder", ["dockerfile", app, image_name(app)], stop_on_error=False)
    app_json = extract_app_json(image_name(app))
    try:  # the cron plugin's app-json-is-valid trigger: a bad task fails the deploy before it starts
        cron.tasks(app, app_json)
    except ValueError as exc:
        fail(str(exc), stdout=True)
    with state.edit_app(app) as data:
        data["deploy"]["app_json"] = app_json
    info1(f"Releasing {app}...")
    info1("Checking for predeploy task")
    verbose("No predeploy task found, skipping")
    info1("Checking for release task")
    verbose("No release task found, skipping")
    if first:
        info1("Checking for heroku.postdeploy task")
        verbose("No heroku.postdeploy task found, skipping")
    info2("Processing deployment checks")
    if not startup_checks(app_json):
        verbose("No web healthchecks found in app.json. Simple container checks will be performed.")
        verbose("For more efficient zero downtime deployments, add healthchecks to your app.json. "
                "See https://dokku.com/docs/deployment/zero-downtime-deploys/ for examples")
    info1(f"Deploying {app} via the docker-local scheduler...")
    rc = deploy_web(app, reason=reason, kind=kind)
    if rc == 0:
        info2("Application deployed:")
        verbose(app_url(app))
        out("")
    return rc


def build_image(app: str, source: str) -> int:
    labels = [
        ("com.dokku.docker-image-labeler/alternate-tags", json.dumps([source])),
        ("com.dokku.app-name", app), ("com.dokku.builder-type", "dockerfile"),
        ("com.dokku.image-stage", "release"), ("dokku", ""),
        ("org.label-schema.schema-version", "1.0"), ("org.label-schema.vendor", "dokku"),
        (TEST_LABEL, "1"), (ROOT_LABEL, str(layout().root)),
    ]
    dockerfile = f"FROM {source}\nLABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in labels) + "\n"
    info1(f"Building {app} from Dockerfile")
    sys.stdout.flush()
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    res = subprocess.run(["docker", "build", "-t", image_name(app), "-"], input=dockerfile, text=True,
                         stdout=sys.stdout, stderr=subprocess.STDOUT, env=env)
    return res.returncode


# ---- commands -------------------------------------------------------------------------------

def git_from_image(args):
    flags, pos = parse_flags("git:from-image", args, values=("--build-dir",))
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    if len(pos) < 2:
        fail("Please specify a docker image")
    source = pos[1]
    info1("Generating build context")
    if image_exists(source):
        info1("Image exists on host, skipping pull")
    else:
        info1("Pulling image")
        out(f"Error response from daemon: pull access denied for {source.split(':')[0]}, "
            "repository does not exist or may require 'docker login'")
        fail(f"Failed to pull image: {source}", stdout=True)
    info1("Updating git repository with specified build context")
    data = state.load_app(app)
    if data["deploy"]["source_image"] == source:
        warn("No changes detected, skipping git commit", stdout=True)
        fail("Call 'ps:rebuild' on app to rebuild the app from existing source", stdout=True)
    first = data["deploy"]["source_image"] is None
    if first:
        verbose("Detected branch, setting deploy-branch to master")
    rev = os.urandom(20).hex()
    with state.edit_app(app) as data:
        data["deploy"]["source_image"] = source
        data["deploy"]["git_rev"] = rev
    with state.edit_config(app) as cfg:
        cfg["GIT_REV"] = rev
    triggers.fire("post-config-update", [app, "set", "GIT_REV"], quiet=True, stop_on_error=False)
    import tempfile
    with tempfile.TemporaryDirectory(prefix=f"dokku-{os.getpid()}-git_build_app_repo.") as build_dir:
        os.chmod(build_dir, 0o755)
        with open(os.path.join(build_dir, "Dockerfile"), "w") as fh:
            fh.write(f"FROM {source}\n")
        nginx.post_extract(app, source)  # core-post-extract
        triggers.fire("post-extract", [app, build_dir, rev])
    info1("Cleaning up...")
    if build_image(app, source) != 0:
        fail(f"Failed to build {app}", stdout=True)
    return release_and_deploy(app, kind="deploy", first=first)


def ps_rebuild(args):
    _, pos = parse_flags("ps:rebuild", args)
    if not pos:
        no_app()
    app = state.require_app(pos[0], stdout=True)
    if not state.load_app(app)["deploy"]["source_image"]:
        fail(f"App {app} has not been deployed", stdout=True)
    return rebuild(app)


def rebuild(app: str) -> int:
    """The rebuild cycle of ``ps:rebuild`` (also run by the ps plugin's ``post-app-rename`` /
    ``post-app-clone``): rebuild ``dokku/APP:latest`` from the app's source image, then release
    and deploy it. The app must have a source image."""
    source = state.load_app(app)["deploy"]["source_image"]
    nginx.post_extract(app, source)  # core-post-extract of the rebuild's git build
    info1("Cleaning up...")
    if build_image(app, source) != 0:
        fail(f"Failed to build {app}", stdout=True)
    return release_and_deploy(app, kind="rebuild")


def ps_restart(args):
    _, pos = parse_flags("ps:restart", args, bools=("--all", "--parallel"))
    if not pos:
        no_app()
    app = state.require_app(pos[0], stdout=True)
    if not is_deployed(app):
        fail(f"App {app} has not been deployed", stdout=True)
    if not image_exists(image_name(app)):
        fail(f"App image ({image_name(app)}) not found", stdout=True)
    return deploy_web(app, reason=_reason(), kind="restart")


def _app_containers(app: str, all_: bool = True) -> list[str]:
    res = docker("ps", *(["-a"] if all_ else []), "-q", "--no-trunc", "--filter", f"label=com.dokku.app-name={app}",
                 "--filter", f"label={ROOT_LABEL}={layout().root}")
    return res.stdout.split()


def ps_stop(args):
    _, pos = parse_flags("ps:stop", args, bools=("--all", "--parallel"))
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    info1(f"Stopping {app}")
    for cid in _app_containers(app, all_=False):
        docker("container", "update", "--restart=no", cid)
        docker("container", "stop", cid)
        calllog.note_container("stopped", cid[:12])
    with state.edit_app(app) as data:
        data["deploy"]["restore"] = False
    triggers.fire("post-stop", [app], stop_on_error=False)
    return 0


def ps_start(args):
    _, pos = parse_flags("ps:start", args, bools=("--all", "--parallel"))
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    triggers.fire("pre-start", [app])
    cur = current_container(app)
    if cur and cur["State"].get("Running"):
        warn(f"App {app} already running")
        return 0
    if not is_deployed(app):
        fail(f"App {app} has not been deployed")
    warn("App has been detected as not running, releasing")
    return release_and_deploy(app, kind="start")


def ps_report(args):
    if not args or args[0].startswith("--"):
        no_app()
    app = state.require_app(args[0])
    data = state.load_app(app)
    deployed = data["deploy"]["deployed"]
    cur = current_container(app) if deployed else None
    running = bool(cur and cur["State"].get("Running"))
    base = {
        "deployed": "true" if deployed else "false", "processes": "1" if deployed else "0",
        "ps-can-scale": "true", "ps-computed-dockerfile-start-cmd": "", "ps-computed-procfile-path": "Procfile",
        "ps-computed-restart-policy": "on-failure:10", "ps-computed-skip-deploy": "false",
        "ps-computed-start-cmd": "", "ps-computed-stop-timeout-seconds": "30", "ps-dockerfile-start-cmd": "",
        "ps-global-procfile-path": "", "ps-global-restart-policy": "", "ps-global-skip-deploy": "",
        "ps-global-stop-timeout-seconds": "", "ps-procfile-path": "", "ps-restart-policy": "",
        "ps-skip-deploy": "", "ps-start-cmd": "", "ps-stop-timeout-seconds": "",
        "restore": "true" if data["deploy"]["restore"] else "false", "running": "true" if running else "false",
    }
    if cur:
        base["status-web.1"] = f"{cur['State']['Status']} (CID: {cur['Id'][:11]})"
    json_rows = dict(base)
    json_rows.update({k[3:]: v for k, v in base.items() if k.startswith("ps-")})
    report(app, "ps information", base, json_rows, args[1:])
    return 0


def ps_inspect(args):
    if not args:
        no_app()
    app = state.require_app(args[0])
    cids = _app_containers(app, all_=False)
    res = docker("container", "inspect", *cids) if cids else None
    out(res.stdout.rstrip("\n") if res else "[]")
    return 0


def run_cmd(args):
    app_args = args
    while app_args and app_args[0].startswith("--"):
        app_args = app_args[1:]
    if not app_args:
        no_app()
    app = state.require_app(app_args[0])
    cmd = app_args[1:]
    if not is_deployed(app) or not image_exists(image_name(app)):
        fail(f"App image ({image_name(app)}) not found")
    env_args, env = _env_args(app)
    tty = ["-t"] if sys.stdin.isatty() and sys.stdout.isatty() else []
    name = f"{app}.run.{random.randint(1000, 9999)}"
    sys.stdout.flush()
    res = subprocess.run(["docker", "container", "run", "--rm", "-i", *tty, "--name", name, *harness_labels(),
                          "--label", f"com.dokku.app-name={app}", "--label", "com.dokku.container-type=run",
                          *env_args, "-e", "DYNO=run.1", *_memory_args(app), *_mount_args(app),
                          *_docker_options(app, "run"), image_name(app), *cmd], env=env)
    return res.returncode


def logs_cmd(args):
    flags, pos = parse_flags("logs", args, bools=("-t", "--tail", "-q", "--quiet"),
                             values=("-n", "--num", "-p", "--ps"))
    if not pos:
        no_app()
    app = state.require_app(pos[0])
    if not is_deployed(app):
        fail(f"App {app} has not been deployed")
    num = flags.get("-n") or flags.get("--num") or "100"
    follow = flags.get("-t") or flags.get("--tail")
    raw = flags.get("-q") or flags.get("--quiet")
    cmd = ["docker", "container", "logs", "-t", "--tail", str(num), *(["-f"] if follow else []), f"{app}.{WEB}"]
    sys.stdout.flush()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        ts, _, rest = line.rstrip("\n").partition(" ")
        out(rest if raw else f"\x1b[36m{ts} app[{WEB}]:\x1b[0m {rest}")
    proc.wait()
    return 0


def run_checks_on_current(app: str) -> int:
    cur = current_container(app)
    if not cur:
        fail(f"App {app} has not been deployed")
    checks = startup_checks(state.load_app(app)["deploy"].get("app_json"))
    return 1 if run_checks(app, cur["Id"], container_port(app), checks) else 0


def remove_app_containers(app: str) -> None:
    """The docker-local ``scheduler-stop APP true`` of apps:destroy: ``docker stop`` the running
    containers (SIGTERM, then SIGKILL after ``DOKKU_DOCKER_STOP_TIMEOUT`` or Docker's 10 s), then
    ``docker rm -f`` every container of the app."""
    running = _app_containers(app, all_=False)
    timeout = state.get_config(app).get("DOKKU_DOCKER_STOP_TIMEOUT")
    for cid in running:
        docker("container", "update", "--restart=no", cid)
    if running:
        docker("container", "stop", *([f"--time={timeout}"] if timeout else []), *running)
    for cid in _app_containers(app):
        verbose(f"Attempting to retire {app} container {cid}")
        docker("container", "rm", "-f", cid)
        calllog.note_container("removed", cid[:12])


def remove_app_image(app: str) -> None:
    docker("image", "rm", "-f", image_name(app))


COMMANDS = {
    "git:from-image": git_from_image, "ps:rebuild": ps_rebuild, "ps:restart": ps_restart,
    "ps:stop": ps_stop, "ps:start": ps_start, "ps:report": ps_report, "ps:inspect": ps_inspect,
    "run": run_cmd, "logs": logs_cmd,
}
