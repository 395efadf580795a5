"""A publish that fails after Dokku deployed the new image restores the previous image as well
as the previous config: restarting with the old config alone would keep the new image running."""
import io
import json
import threading
import time
import uuid

import docker

from tests.e2e.conftest import history, linked_instance, sync_stream_status
from tests.images.names import STANDIN_IMAGES

LABEL = "dokku-powersync-test.failed-publish"


def _remove_broken_images(app: str) -> None:
    """This test's app's containers of a broken image first (one Dokku is still retiring may run),
    then the images; one another test's container still uses is left to that test."""
    client = docker.from_env()
    for container in client.containers.list(all=True, filters={"label": f"com.dokku.app-name={app}"}):
        if LABEL in (container.image.labels or {}):
            container.remove(force=True)
    for image in client.images.list(filters={"label": LABEL}):
        try:
            client.images.remove(image.id, force=True)
        except docker.errors.APIError:
            pass


def _image_that_exits_after_turning_ready(after_ready: bool = False) -> str:
    """The stand-in, started so that it turns ready and exits 5 s after it started (or, with
    `after_ready`, once it has run 5 s and answered readiness, however long that took), as the
    real service does with rules its replication rejects."""
    repository = f"dokku-powersync-test/exits-after-ready-{uuid.uuid4().hex[:6]}"
    ready = ("until node -e \\\"fetch('http://127.0.0.1:8080/probes/readiness').then(r => process.exit(r.ok ? 0 : 1), "
             "() => process.exit(1))\\\"; do sleep 0.5; done; ") if after_ready else ""
    dockerfile = (
        f"FROM {STANDIN_IMAGES[1]}\n"
        f"LABEL {LABEL}=1\n"
        f'ENTRYPOINT ["/bin/sh", "-c", "node service/lib/entry.js start & sleep 5; {ready}exit 1"]\n'
        "CMD []\n"
    )
    docker.from_env().images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=f"{repository}:1.26.0", rm=True)
    return repository


def _source_image(h, app: str) -> str:
    return h.run("git:report", app, "--git-source-image").stdout.strip()


class ReadinessPoller(threading.Thread):
    """Asks whatever container is `NAME.web.1` (where Dokku points traffic) for readiness, again
    and again; a request that an existing container does not answer 2xx is a failed request."""

    def __init__(self, name: str):
        super().__init__(daemon=True)
        self.name, self.stop, self.answers, self.failures = name, threading.Event(), 0, []

    def run(self) -> None:
        client = docker.from_env()
        script = "fetch('http://127.0.0.1:8080/probes/readiness').then(r=>process.stdout.write(String(r.status)))"
        while not self.stop.is_set():
            try:
                container = client.containers.get(f"{self.name}.web.1")
                result = container.exec_run(["node", "-e", script])
            except docker.errors.NotFound:
                continue  # between Dokku's two renames
            except docker.errors.APIError as exc:  # e.g. the container is restarting
                self.failures.append(str(exc)[:120])
                continue
            status = result.output.decode(errors="replace").strip()
            if status.startswith("2"):
                self.answers += 1
            elif self._still_serving(client, container.id):
                self.failures.append(f"{container.name}: exit {result.exit_code} {status[:120]}")
            # else: Dokku switched meanwhile and retired (SIGTERM) the container this request was
            # in; the proxy sends new requests to the new one (in-flight ones are cut, as on
            # every Dokku deploy)
            time.sleep(0.2)

    def _still_serving(self, client, container_id: str) -> bool:
        try:
            return client.containers.get(f"{self.name}.web.1").id == container_id
        except docker.errors.NotFound:
            return False


def test_a_failed_upgrade_redeploys_the_previous_image(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    before = _source_image(h, name)
    serving = docker.from_env().containers.get(f"{name}.web.1").id
    broken = _image_that_exits_after_turning_ready()
    poller = ReadinessPoller(name)
    try:
        started = time.time()
        poller.start()
        result = h.run("powersync:upgrade", name, "--image", broken, "--image-version", "1.26.0")
        poller.stop.set()
        poller.join()
        assert result.returncode == 1, result.stdout + result.stderr
        # (after turning ready, or before it when this machine is too loaded to start it in 5 s)
        assert f"The new container of {name} did not stay up: it exited" in result.stderr
        # Dokku's own startup checks (the uptime check in the derived image's app.json) refused
        # the container that died after turning ready: traffic never went to it, the previous
        # container served throughout, no request failed.
        refused = [d for d in h.deploys(name) if d["started"] >= started][0]
        assert (refused["outcome"], refused["old"]) == ("failed", serving)
        assert poller.failures == [] and poller.answers > 0
        assert _source_image(h, name) == before
        assert "Restored" in result.stderr
        time.sleep(8)  # longer than the broken image lives
        container = docker.from_env().containers.get(f"{name}.web.1")
        assert container.status == "running" and container.attrs["RestartCount"] == 0
        assert sync_stream_status(name, backend.token(backend.app, None))[0] == 200
        info = json.loads(h.run("powersync:info", name, "--format", "json").stdout)
        assert info["image"] != broken and info["image-version"] == "1.25.0"
        assert history(h, name)[-1]["status"] == "failed"
        # Dokku leaves the refused container stopped, restart policy off, for its retire job.
        left = [c for c in docker.from_env().containers.list(all=True, filters={"label": f"com.dokku.app-name={name}"})
                if ".web.1.upcoming-" in c.name]
        assert len(left) == 1 and left[0].status == "exited", left
    finally:
        _remove_broken_images(name)


def test_with_dokku_checks_skipped_the_plugin_holds_the_stay_up_gate(harness, source):
    """`checks:skip` makes Dokku switch at once: the plugin then waits out the stay-up window
    itself, so a container that dies after turning ready is still caught and undone. (This image
    exits once it has run 5 s and answered readiness, and the window is 30 s, so a slow start on a
    loaded machine does not change what is tested.)"""
    h = harness
    name, _ = linked_instance(h, source)
    before = _source_image(h, name)
    assert h.run("checks:skip", name, "web").returncode == 0
    broken = _image_that_exits_after_turning_ready(after_ready=True)
    try:
        result = h.run("powersync:upgrade", name, "--image", broken, "--image-version", "1.26.0",
                       env={"POWERSYNC_STAY_UP_SECONDS": "30"})
        assert result.returncode == 1, result.stdout + result.stderr
        output = result.stdout + result.stderr
        assert "Dokku ran no startup checks: checking the new container stays up" in result.stdout, output
        assert f"The new container of {name} exited after turning ready" in result.stderr, output
        # its last log lines, JSON as the real image writes them, shown in the service's text format
        assert "[info]: " in result.stderr and '{"level"' not in result.stderr, output
        assert "Restored" in result.stderr and _source_image(h, name) == before, output
        assert history(h, name)[-1]["status"] == "failed"
    finally:
        _remove_broken_images(name)
