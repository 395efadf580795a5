"""The suite is safe to run on a real Dokku host (issue 10, item 9).

There ``journeyapps/powersync-service:<version>`` is the image production PowerSync instances run
and ``postgres:<version>`` the one dokku-postgres services run. The test images live under
``dokku-powersync-test/`` (tests/images/names.py); these tests check that building them and
cleaning a harness up leaves such tags alone, and that no test names those repositories.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.harness.fixture import make_harness
from tests.images.names import BASE_IMAGE, STANDIN_REPO

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tests" / "images" / "build"
GUARDED = ("journeyapps/powersync-service", "postgres")
# a version no real image has, so the dummy tags can never be a host's real image
DUMMY_VERSION = "0.0.0-dokku-powersync-safety"
# a tag-qualified or quoted reference to a guarded repository (prose mentioning the real image is fine)
REFERENCE = re.compile(r"journeyapps/powersync-service(?::|[\"'])|(?<![\w./-])postgres:\d")
# a powersync:create call argument: without --image STANDIN_REPO it would use the real image
CREATE = re.compile(r"[\"']powersync:create[\"'],")


def _image_id(reference: str) -> str:
    return subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", reference],
                          capture_output=True, text=True).stdout.strip()


def _docker(*args: str) -> None:
    subprocess.run(["docker", *args], capture_output=True)


@pytest.fixture
def dummy_real_tags():
    """``journeyapps/powersync-service:DUMMY`` and ``postgres:DUMMY``, both the small base image."""
    if not _image_id(BASE_IMAGE):
        pytest.skip(f"{BASE_IMAGE} is not built (tests/images/build)")
    tags = [f"{repo}:{DUMMY_VERSION}" for repo in GUARDED]
    for tag in tags:
        subprocess.run(["docker", "tag", BASE_IMAGE, tag], check=True)
    yield {tag: _image_id(tag) for tag in tags}
    for tag in (*tags, f"{STANDIN_REPO}:{DUMMY_VERSION}"):
        _docker("image", "rm", tag)


def test_image_build_and_harness_cleanup_leave_real_host_images_alone(dummy_real_tags):
    # A stand-in built under the dummy version is where a build under the real name would retag.
    build = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=1800,
                           env=dict(os.environ, STANDIN_VERSIONS=DUMMY_VERSION))
    assert build.returncode == 0, build.stdout + build.stderr
    assert {tag: _image_id(tag) for tag in dummy_real_tags} == dummy_real_tags, build.stdout
    assert _image_id(f"{STANDIN_REPO}:{DUMMY_VERSION}"), build.stdout
    h = make_harness()
    try:
        assert h.run("postgres:create", h.unique("safety")).returncode == 0
    finally:
        h.cleanup()
    assert {tag: _image_id(tag) for tag in dummy_real_tags} == dummy_real_tags


def test_no_test_names_a_real_host_image():
    """Instances get ``--image STANDIN_REPO``; tests/unit is exempt (pure code, no Docker)."""
    build_repo = re.search(r"^STANDIN_REPO=(\S+)$", BUILD.read_text(), re.M)
    assert build_repo and build_repo.group(1) == STANDIN_REPO
    offenders = []
    for base in ("tests", "benchmarks"):
        for path in sorted((ROOT / base).rglob("*")):
            rel = path.relative_to(ROOT)
            if (not path.is_file() or rel.parts[:2] == ("tests", "unit") or "node_modules" in rel.parts
                    or path == Path(__file__)):
                continue
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            offenders += [f"{rel}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
                          if REFERENCE.search(line) or CREATE.search(line) and "STANDIN_REPO" not in line]
    assert not offenders, "\n".join(offenders)
