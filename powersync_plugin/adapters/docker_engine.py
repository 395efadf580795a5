"""The one place that talks to the Docker engine.

It observes an app's containers (Dokku names and labels them), builds the one-layer derived image
that carries the readiness health check, and runs HTTP requests *inside* a container with the
image's own `node` (one relay per container, exec_channel.py), so the plugin never needs a route
to container IPs and works the same on every Docker network layout. Rules of an instance that does not run are checked by the image's own
parser in a one-off container (check_rules).
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional
from urllib.parse import quote, urlsplit

from powersync_plugin import settings
from powersync_plugin.adapters import health_check
from powersync_plugin.adapters.rules_check import RulesVerdict, run_rules_check
from powersync_plugin.adapters.startup_checks import app_json
from powersync_plugin.core.errors import DomainError

DERIVED_REPOSITORY = "dokku-powersync/powersync-service"
LABEL_BASE_IMAGE = "com.dokku.powersync.base-image"
LABEL_BASE_DIGEST = "com.dokku.powersync.base-digest"
LABEL_BASE_VERSION = "com.dokku.powersync.base-version"
# Dokku re-tags what it deploys as dokku/<app>:latest, but image labels carry through to the
# container: this one says which derived image an app runs.
LABEL_DERIVED_TAG = "com.dokku.powersync.derived-tag"

# Dokku's nginx reads nginx.conf.sigil from the image's WORKDIR (/app) at every build and keeps
# it for proxy:build-config: Dokku's default server block, minus the admin and sync-rules APIs.
NGINX_TEMPLATE = Path(__file__).with_name("nginx.conf.sigil")


def build_context(cron: tuple = ()) -> dict[str, bytes]:
    """The files the derived image adds to /app. Their digest is part of the derived tag, so a
    plugin update that changes one (or another POWERSYNC_STAY_UP_SECONDS) builds a new image and
    the next publish deploys it: Dokku keeps the checks of the image it last deployed. `cron`:
    Dokku's app.json cron entries (`compact-schedule`)."""
    checks = app_json()
    document = {**checks, "cron": list(cron)} if cron else checks
    return {"app.json": (json.dumps(document, indent=2) + "\n").encode(), "nginx.conf.sigil": NGINX_TEMPLATE.read_bytes(),
            health_check.SCRIPT_NAME: health_check.SCRIPT.read_bytes()}


def _health_instruction() -> str:
    """The engine's health check (health_check.py), on the service's HTTP port."""
    from powersync_plugin.core.config_render import HTTP_PORT  # only publishing needs it: reads stay light

    return health_check.dockerfile_instruction(HTTP_PORT)


class DockerUnavailable(DomainError):
    pass


@dataclass(frozen=True)
class ContainerView:
    id: str
    name: str
    image: str
    running: bool
    restart_count: int
    exit_code: int
    started_at: str
    memory_bytes: int = 0


@dataclass(frozen=True)
class ListedContainer:
    """What the engine's container listing tells (no inspect): enough for a status line."""

    id: str
    image: str
    running: bool


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class ImageView:
    id: str
    tags: tuple[str, ...]
    digest: str
    labels: Mapping[str, str]


class DockerEngine:
    def __init__(self) -> None:
        self._client = None
        # Seconds the PowerSync process took to answer admin and probe requests, as timed inside
        # its container (POWERSYNC_TIMINGS separates them from the plugin's own time).
        self.service_seconds = 0.0
        self._rules_verdicts: dict[tuple[str, str], RulesVerdict] = {}
        self._channels = None  # the HTTP relays, one per container (exec_channel.py)

    @property
    def client(self):
        if self._client is None:
            import docker

            try:
                # Every Docker call times out (the SDK's default is 60 s; slow hosts may raise it).
                self._client = docker.from_env(timeout=int(settings.seconds("POWERSYNC_DOCKER_TIMEOUT", 60)))
                self._client.ping()
            except Exception as exc:  # the SDK raises several types for "no daemon"
                raise DockerUnavailable(f"Cannot reach the Docker engine: {exc}") from None
        return self._client

    def _get(self, path: str) -> tuple[int, Any]:
        """A GET over the engine's socket with the standard library (docker_socket.py says why)."""
        from powersync_plugin.adapters.docker_socket import engine_get

        timeout = settings.seconds("POWERSYNC_DOCKER_TIMEOUT", 60)
        try:
            return engine_get(path, timeout=timeout)
        except TimeoutError:
            raise DockerUnavailable(
                f"The Docker engine did not answer GET {path.split('?', 1)[0]} within {timeout:g}s: check "
                "`systemctl status docker`, or allow more time with POWERSYNC_DOCKER_TIMEOUT=<seconds>"
            ) from None
        except OSError as exc:
            raise DockerUnavailable(f"Cannot reach the Docker engine: {exc}") from None

    def web_container(self, app: str) -> Optional[ContainerView]:
        """The app's current web container (`APP.web.1`), running or not."""
        return self.container(f"{app}.web.1")

    def web_containers(self) -> dict[str, ListedContainer]:
        """Every app's web container (`APP.web.1`) by app name, from one listing call: status --all
        reads a host of instances without one inspect per container."""
        filters = quote(json.dumps({"name": [r"\.web\.1$"]}))
        _, listing = self._get(f"/containers/json?all=1&filters={filters}")
        found = {}
        for attrs in listing or []:
            for name in attrs.get("Names") or []:
                if name.lstrip("/").endswith(".web.1"):
                    labels = attrs.get("Labels") or {}
                    found[name.lstrip("/")[: -len(".web.1")]] = ListedContainer(
                        id=attrs["Id"], image=labels.get(LABEL_DERIVED_TAG) or attrs.get("Image", ""),
                        running=attrs.get("State") == "running",
                    )
        return found

    def container(self, name_or_id: str) -> Optional[ContainerView]:
        status, attrs = self._get(f"/containers/{quote(name_or_id)}/json")
        if status == 404 or not isinstance(attrs, dict):
            return None
        return _view(attrs)

    def health_report(self, container_id: str) -> Optional[health_check.HealthReport]:
        """The engine's latest fresh health-check answer for a container, or None (health_check.py)."""
        status, attrs = self._get(f"/containers/{quote(container_id)}/json")
        return health_check.read_report(attrs) if status == 200 and isinstance(attrs, dict) else None

    def image(self, reference: str) -> Optional[ImageView]:
        """An image by reference or id, from the engine's image inspect over its socket (as the
        SDK's images.get asks it), or None when the engine has none: a publish that builds and
        pulls nothing needs no SDK."""
        status, attrs = self._get(f"/images/{quote(reference, safe='/:')}/json")
        if status == 404:
            return None
        if status != 200 or not isinstance(attrs, dict):
            detail = attrs.get("message") if isinstance(attrs, dict) else f"HTTP {status}"
            raise DockerUnavailable(f"The Docker engine could not inspect the image {reference}: {detail}")
        digests = attrs.get("RepoDigests") or []
        # Locally built images have no registry digest; their content id identifies them.
        digest = digests[0].split("@", 1)[1] if digests else attrs["Id"]
        tags = tuple(tag for tag in attrs.get("RepoTags") or [] if tag != "<none>:<none>")
        return ImageView(id=attrs["Id"], tags=tags, digest=digest, labels=(attrs.get("Config") or {}).get("Labels") or {})

    def pull(self, reference: str) -> ImageView:
        import docker.errors

        repository, _, tag = reference.rpartition(":")
        try:
            self.client.images.pull(repository, tag=tag)
        except docker.errors.APIError as exc:
            raise DomainError(f"Cannot pull {reference}: {exc.explanation or exc}") from None
        found = self.image(reference)
        assert found is not None
        return found

    def build_derived(self, base: ImageView, base_reference: str, version: str, cron: tuple = ()) -> str:
        """Build (or reuse) the one-layer image `FROM base` + build_context(cron) in /app; return its tag."""
        tag = derived_tag(base, version, cron)
        existing = self.image(tag)
        if existing is not None and existing.labels.get(LABEL_DERIVED_TAG) == tag and existing.labels.get(LABEL_BASE_DIGEST) == base.digest:
            return tag
        dockerfile = (
            f"FROM {base.id}\n"
            f'LABEL {LABEL_BASE_IMAGE}="{base_reference}" {LABEL_BASE_DIGEST}="{base.digest}" '
            f'{LABEL_BASE_VERSION}="{version}" {LABEL_DERIVED_TAG}="{tag}"\n'
            f"COPY {' '.join(build_context())} /app/\n"
            f"{_health_instruction()}\n"
        )
        import io
        import tarfile  # only a build needs them: reads (status --all, info) import this module too

        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as archive:
            for name, raw in {"Dockerfile": dockerfile.encode(), **build_context(cron)}.items():
                info = tarfile.TarInfo(name)
                info.size = len(raw)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(raw))
        context.seek(0)
        self.client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, pull=False)
        return tag

    def http(
        self,
        container_id: str,
        method: str,
        path: str,
        headers: Optional[Mapping[str, str]] = None,
        body: Optional[str] = None,
        timeout: float = 5.0,
        stop_at: str = "",
        port: int = 8080,
    ) -> HttpResult:
        """An HTTP request run inside the container by its image's own node, through the
        command's one relay there (exec_channel.py): no route to the container's IP is needed."""
        if self._channels is None:
            from powersync_plugin.adapters.exec_channel import ChannelPool

            self._channels = ChannelPool()
        answer = self._channels.get(container_id).request(
            method, f"http://127.0.0.1:{port}{path}", headers or {}, body, timeout, stop_at,
        )
        self.service_seconds += answer.service_ms / 1000
        return HttpResult(status=answer.status, body=answer.body, error=answer.error)

    def read_file(self, container_id: str, path: str) -> Optional[str]:
        """A file as the running process sees it (a config behind POWERSYNC_CONFIG_PATH)."""
        script = "process.stdout.write(require('fs').readFileSync(process.argv[1], 'utf8'))"
        import docker.errors

        try:
            exit_code, output = self.client.containers.get(container_id).exec_run(["node", "-e", script, path])
        except docker.errors.APIError:
            return None
        return output.decode() if exit_code == 0 else None

    def wait_stays_up(self, container_id: str, seconds: float) -> Optional[ContainerView]:
        """Watch a container for `seconds`; return it if it kept running without a restart."""
        deadline = time.monotonic() + seconds
        view = self.container(container_id)
        while view is not None and view.running and view.restart_count == 0:
            if time.monotonic() >= deadline:
                return view
            time.sleep(0.5)
            view = self.container(container_id)
        return None

    def interrupted_deploy_containers(self, app: str) -> list[str]:
        """Names of `APP.<proc>.<n>.upcoming-<n>` containers: a deploy killed before Dokku renamed
        or removed its new container leaves one behind, with Dokku's `on-failure` restart policy,
        still competing with the live instance for the replication lock."""
        containers = self.client.containers.list(all=True, filters={"label": f"com.dokku.app-name={app}"})
        pattern = re.compile(rf"{re.escape(app)}\.[a-z0-9-]+\.\d+\.upcoming-\d+")
        return sorted(c.name for c in containers if pattern.fullmatch(c.name))

    def stop_app_containers(self, app: str, timeout: int = 30) -> list[str]:
        """Stop every running container of the app gracefully (SIGTERM, then `timeout` seconds),
        as Dokku's docker-local scheduler-stop does; returns their names."""
        import docker.errors

        stopped = []
        for container in self.client.containers.list(filters={"label": f"com.dokku.app-name={app}"}):
            try:
                container.stop(timeout=timeout)
                stopped.append(container.name)
            except docker.errors.NotFound:
                pass
        return stopped

    def remove_container(self, name: str) -> None:
        import docker.errors

        try:
            self.client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass

    def logs_tail(self, container_id: str, lines: int = 20) -> str:
        """The container's last log lines, as an operator reads them (see readable_log)."""
        import docker.errors

        try:
            return readable_log(self.client.containers.get(container_id).logs(tail=lines).decode(errors="replace"))
        except docker.errors.NotFound:
            return ""

    def logs_since(self, container_id: str, since: float) -> str:
        import docker.errors

        try:
            return self.client.containers.get(container_id).logs(since=int(since)).decode(errors="replace")
        except docker.errors.NotFound:
            return ""

    def check_rules(self, image: str, content: str, owner: str, timeout: float = 60.0) -> RulesVerdict:
        """The image's own parser on `content` (see rules_check): one run per image and content per
        process, since rollback-rules previews, then applies, the same rules."""
        key = (image, hashlib.sha256(content.encode()).hexdigest())
        if key not in self._rules_verdicts:
            self._rules_verdicts[key] = run_rules_check(self.client, image, content, owner, timeout)
        return self._rules_verdicts[key]


def derived_tag(base: ImageView, version: str, cron: tuple = ()) -> str:
    """The tag of the derived image of `base` (what build_derived builds, and dry runs compare)."""
    parts = {k: hashlib.sha256(v).hexdigest() for k, v in build_context(cron).items()}
    parts["HEALTHCHECK"] = _health_instruction()  # another interval is another image
    files = hashlib.sha256(json.dumps(parts).encode())
    return f"{DERIVED_REPOSITORY}:{version}-{base.digest.split(':', 1)[-1][:12]}-{files.hexdigest()[:8]}"


def _view(attrs: dict) -> ContainerView:
    """A container as the engine's inspect describes it."""
    state, config = attrs.get("State") or {}, attrs.get("Config") or {}
    return ContainerView(
        id=attrs["Id"],
        name=str(attrs.get("Name", "")).lstrip("/"),
        image=(config.get("Labels") or {}).get(LABEL_DERIVED_TAG) or config.get("Image", ""),
        running=bool(state.get("Running")),
        restart_count=int(attrs.get("RestartCount", 0) or 0),
        exit_code=int(state.get("ExitCode", 0) or 0),
        started_at=state.get("StartedAt", ""),
        memory_bytes=int((attrs.get("HostConfig") or {}).get("Memory") or 0),
    )


def timeout_message(exc: BaseException) -> Optional[str]:
    """A clear message for a Docker call that timed out (the SDK raises requests' Timeout), naming
    the call; None for any other error."""
    import requests

    if not isinstance(exc, requests.exceptions.Timeout):
        return None
    request = getattr(exc, "request", None)
    call = f"{request.method} {urlsplit(request.url).path}" if request is not None and request.url else "a Docker API call"
    return (
        f"The Docker engine did not answer {call} within {settings.seconds('POWERSYNC_DOCKER_TIMEOUT', 60):g}s: "
        "check `systemctl status docker`, or allow more time with POWERSYNC_DOCKER_TIMEOUT=<seconds>"
    )


def readable_log(text: str) -> str:
    """The service's JSON log lines (the real image's default: NODE_ENV=production) in its own text
    format, `TIMESTAMP [level]: message`; any other line as it is."""
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if isinstance(entry, dict) and isinstance(entry.get("message"), str):
            out.append(f"{entry.get('timestamp', '')} [{entry.get('level', '')}]: {entry['message']}".lstrip())
        else:
            out.append(line)
    return "\n".join(out)
