"""Issue 13's scale figure: 50 instances on one harness host, `list` and `status --all` against
the harness's own `apps:list`.

    .venv/bin/python benchmarks/scale.py [--instances 50] [--linked 3] [--runs 5] [--parallel 3]

Builds a fresh harness with the plugin installed, one dokku-postgres source and `--linked`
backends on it; creates `--instances` instances of the stand-in image and sets rules on each
(`--parallel` commands at a time: the unlinked ones check their rules in a one-off container of
their image); links `--linked` of them (each then runs a container: what a 2-core machine allows
beside everything else), the rest stay created and stored. Then prints the medians of `apps:list`,
`powersync:list`, `powersync:status --all` (text and JSON) and their ratios to `apps:list`
(issue 13's read target: at most 2x), plus what the set-up took. It times `status --all` once the
engine's health check of each running instance has answered (up to 90 s), as on a host whose
instances have run a while; until then `status --all` probes them live. Figures are printed, never
asserted; the run takes several minutes, so it is not part of tests/run's benchmarks.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ratios import median, wall  # noqa: E402
from tests.harness.fixture import make_harness  # noqa: E402
from tests.images.names import STANDIN_REPO  # noqa: E402

RULES = "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM todos -- {}\n"


def setup(h, instances: int, linked: int, parallel: int) -> dict:
    tag = uuid.uuid4().hex[:4]  # container names are global to the Docker engine other suites share
    names = [f"sc{tag}-{index:02d}" for index in range(instances)]
    assert h.run("postgres:create", f"sc{tag}-db", "--config-options", "-c wal_level=logical").returncode == 0
    h.run("postgres:connect", f"sc{tag}-db",
          input="CREATE TABLE todos (id text primary key);\nCREATE PUBLICATION powersync FOR ALL TABLES;\n")
    timings: dict[str, list[float]] = {"create": [], "set-rules": [], "link": []}

    def create(name: str) -> None:
        timings["create"].append(wall(h, "powersync:create", name, "--image", STANDIN_REPO))
        timings["set-rules"].append(wall(h, "powersync:set-rules", name, input=RULES.format(name)))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(create, names))
    created = time.perf_counter() - started
    for index, name in enumerate(names[:linked]):
        backend = f"sc{tag}-api{index}"
        h.run("apps:create", backend)
        h.run("postgres:link", f"sc{tag}-db", backend)
        h.run("config:set", "--no-restart", backend, "SECRET_KEY=" + "s" * 64)
        wall(h, "domains:set", name, f"{name}.example.test")
        timings["link"].append(wall(h, "powersync:link", name, backend))
    return {"names": names, "created_seconds": created, **{key: median(values) for key, values in timings.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--linked", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=3)
    options = parser.parse_args()
    h = make_harness()
    try:
        assert h.install_plugin().returncode == 0, "plugin:install failed"
        built = setup(h, options.instances, options.linked, options.parallel)
        print(f"set-up: {options.instances} instances created and rules set in {built['created_seconds']:.0f} s "
              f"({options.parallel} at a time; medians: create {built['create']:.2f} s, set-rules {built['set-rules']:.2f} s), "
              f"{options.linked} linked (median link {built['link']:.2f} s)")
        listed = json.loads(h.run("powersync:list", "--format", "json").stdout)
        rows, deadline = [], time.monotonic() + 90
        while time.monotonic() < deadline:  # until the engine's health check answered for each (30 s interval)
            rows = json.loads(h.run("powersync:status", "--all", "--format", "json").stdout)
            running = [row for row in rows if row["state"] == "running"]
            if all(row["checked_by"] == "health check" for row in running):
                break
            time.sleep(2)
        print(f"list shows {len(listed)} instances; status --all: {len(running)} running "
              f"({sum(row['rules_on_service'] == 'active' for row in running)} with their rules active, "
              f"{sum(bool(row['ready']) for row in running)} ready, "
              f"{sum(row['checked_by'] == 'health check' for row in running)} answered by the engine's health check, "
              f"the others probed live), {sum(row['state'] == 'not deployed' for row in rows)} not deployed")
        figures = {
            "apps:list": median([wall(h, "apps:list") for _ in range(options.runs)]),
            "list": median([wall(h, "powersync:list") for _ in range(options.runs)]),
            "status --all": median([wall(h, "powersync:status", "--all") for _ in range(options.runs)]),
            "status --all --format json": median([
                wall(h, "powersync:status", "--all", "--format", "json") for _ in range(options.runs)]),
        }
        base = figures["apps:list"]
        print(f"\n{'command':<28}{'median':>9}{'ratio':>7}   (medians of {options.runs}; ratio = / apps:list, "
              f"read target <= 2.00; {options.instances} apps + {options.linked} backends on the host)")
        for name, value in figures.items():
            print(f"{name:<28}{value * 1000:>7.0f}ms{value / base:>7.2f}")
        print(f"scale: {options.instances} instances ({options.linked} linked): list {figures['list'] / base:.2f}x, "
              f"status --all {figures['status --all'] / base:.2f}x apps:list ({base * 1000:.0f} ms)")
    finally:
        h.cleanup()


if __name__ == "__main__":
    main()
