"""The one-off rules check's Node script finds the parser the way the real image lays it out.

The real journeyapps/powersync-service image (service/Dockerfile at v1.25.0 upstream) is a pnpm
workspace under WORKDIR /app: /app/service/node_modules holds only the service's direct
dependencies, as symlinks (@powersync/service-core -> ../../../packages/service-core), and
@powersync/service-sync-rules is a dependency of service-core
(/app/packages/service-core/node_modules/@powersync/service-sync-rules -> the workspace package).
The stand-in image has a flat /app/service/node_modules instead. This test builds the pnpm shape
around the real npm parser (tests/standin/node_modules) and runs the script with the host's node,
from the image's working directory, as the one-off container does.
"""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from powersync_plugin.adapters.rules_check import _RULES_CHECK_SCRIPT

ROOT = Path(__file__).resolve().parents[2]
PARSER = ROOT / "tests/standin/node_modules/@powersync/service-sync-rules"
JOIN = "bucket_definitions:\n  j:\n    data:\n      - SELECT * FROM todos JOIN x ON x.id = todos.id\n"
GOOD = "bucket_definitions:\n  g:\n    data:\n      - SELECT * FROM todos\n"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not PARSER.is_dir(), reason="needs host node and tests/standin/node_modules"
)


def pnpm_image_tree(app: Path, with_parser: bool = True) -> None:
    core = app / "packages/service-core"
    (core / "dist").mkdir(parents=True)
    (core / "package.json").write_text(json.dumps({"name": "@powersync/service-core", "type": "module", "exports": "./dist/index.js"}))
    (core / "dist/index.js").write_text("export {};\n")
    (app / "service/node_modules/@powersync").mkdir(parents=True)
    (app / "service/package.json").write_text(json.dumps({"name": "@powersync/service-image", "type": "module"}))
    (app / "service/node_modules/@powersync/service-core").symlink_to("../../../packages/service-core")
    if with_parser:
        (core / "node_modules/@powersync").mkdir(parents=True)
        (core / "node_modules/@powersync/service-sync-rules").symlink_to(PARSER)


def run_script(app: Path, rules: str) -> dict:
    (app.parent / "rules.yaml").write_text(rules)
    result = subprocess.run(
        ["node", "-e", _RULES_CHECK_SCRIPT, str(app.parent / "rules.yaml")], cwd=app, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_parser_is_found_through_service_core_as_in_the_real_image(tmp_path):
    pnpm_image_tree(tmp_path / "app")
    assert run_script(tmp_path / "app", JOIN) == {"errors": ["Must SELECT from a single table"]}
    assert run_script(tmp_path / "app", GOOD) == {"errors": []}


def test_an_image_without_the_parser_says_so(tmp_path):
    pnpm_image_tree(tmp_path / "app", with_parser=False)
    answer = run_script(tmp_path / "app", GOOD)
    assert "Cannot find module '@powersync/service-sync-rules'" in answer["unavailable"]
