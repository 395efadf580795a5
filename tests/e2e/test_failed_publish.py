"""A publish that fails after Dokku deployed the new image restores the previous image as well
as the previous config: restarting with the old config alone would keep the new image running."""
import io
import json
import time
import uuid

import docker

from tests.e2e.conftest import history, linked_instance, sync_stream_status
from tests.images.names import STANDIN_IMAGES

LABEL = "dokku-powersync-test.failed-publish"


def _image_that_exits_after_turning_ready() -> str:
    """The stand-in, started so that it turns ready and exits 5 s later (as the real service does
    with rules its replication rejects)."""
    repository = f"dokku-powersync-test/exits-after-ready-{uuid.uuid4().hex[:6]}"
    dockerfile = (
        f"FROM {STANDIN_IMAGES[1]}\n"
        f"LABEL {LABEL}=1\n"
        'ENTRYPOINT ["/bin/sh", "-c", "node service/lib/entry.js start & sleep 5; exit 1"]\n'
        "CMD []\n"
    )
    docker.from_env().images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=f"{repository}:1.26.0", rm=True)
    return repository


def _source_image(h, app: str) -> str:
    return h.run("git:report", app, "--git-source-image").stdout.strip()


def test_a_failed_upgrade_redeploys_the_previous_image(harness, source):
    h = harness
    name, backend = linked_instance(h, source)
    before = _source_image(h, name)
    broken = _image_that_exits_after_turning_ready()
    try:
        result = h.run("powersync:upgrade", name, "--image", broken, "--image-version", "1.26.0")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "exited after turning ready" in result.stderr
        assert _source_image(h, name) == before
        assert "Restored" in result.stderr
        time.sleep(8)  # longer than the broken image lives
        container = docker.from_env().containers.get(f"{name}.web.1")
        assert container.status == "running" and container.attrs["RestartCount"] == 0
        assert sync_stream_status(name, backend.token(backend.app, None))[0] == 200
        info = json.loads(h.run("powersync:info", name, "--format", "json").stdout)
        assert info["image"] != broken and info["image-version"] == "1.25.0"
        assert history(h, name)[-1]["status"] == "failed"
    finally:
        for image in docker.from_env().images.list(filters={"label": LABEL}):
            docker.from_env().images.remove(image.id, force=True)
