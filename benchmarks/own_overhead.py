"""The plugin's own time inside `link` and `set-rules`, excluding Dokku calls and readiness waits.

    .venv/bin/python benchmarks/own_overhead.py [--runs 3]

Runs the commands for real on the Dokku harness (tests/harness) with the PowerSync stand-in and a
Postgres service (build the images first: tests/setup-host). The plugin reports (POWERSYNC_TIMINGS=1)
the seconds its process spent inside Dokku calls, waiting for readiness and the stay-up window, and
waiting for PowerSync to answer admin requests (validate), timed inside the container; `own` is the
rest of the plugin process (imports, journal, planning, Docker API calls including the `docker
exec` that carries each HTTP request). `launch` is the wall time outside the plugin process: the
harness's Python `dokku` dispatcher, the bash shims and interpreter start.
Figures are printed, never asserted; the target is under 300 ms of own time.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.fixture import make_harness  # noqa: E402
from tests.images.names import STANDIN_REPO  # noqa: E402

RULES = "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM todos -- {}\n"
TIMINGS = re.compile(r"timings: total=([\d.]+) dokku=([\d.]+) waits=([\d.]+) service=([\d.]+) own=([\d.]+)")


def timed(h, *args, input=None):
    """(wall, in Dokku, readiness waits, PowerSync answering, own in-process) seconds of one command."""
    started = time.perf_counter()
    result = subprocess.run(["dokku", *args], input=input or "", capture_output=True, text=True,
                            env={**h.env, "POWERSYNC_TIMINGS": "1"})
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{args} failed:\n{result.stdout}{result.stderr}")
    match = TIMINGS.search(result.stderr)
    total, dokku, waits, service, own = (float(match.group(i)) for i in range(1, 6))
    return wall, dokku, waits, service, own, wall - total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    h = make_harness()
    try:
        assert h.install_plugin().returncode == 0
        tag = uuid.uuid4().hex[:4]  # container names are global to the Docker engine another run may share
        database = f"bench-db-{tag}"
        assert h.run("postgres:create", database, "--config-options", "-c wal_level=logical").returncode == 0
        h.run("postgres:connect", database, input="CREATE TABLE todos (id text primary key);\nCREATE PUBLICATION powersync FOR ALL TABLES;\n")
        figures = {"link": [], "set-rules": []}
        for run in range(runs):
            backend, name = f"bench-api-{tag}{run}", f"bench-ps-{tag}{run}"
            h.run("apps:create", backend)
            h.run("postgres:link", database, backend)
            h.run("config:set", "--no-restart", backend, "SECRET_KEY=" + "b" * 64)
            h.run("powersync:create", name, "--image", STANDIN_REPO)
            h.run("domains:set", name, f"{name}.example.test")
            h.run("powersync:set-rules", name, input=RULES.format("initial"))
            figures["link"].append(timed(h, "powersync:link", name, backend))
            figures["set-rules"].append(timed(h, "powersync:set-rules", name, input=RULES.format(run)))
            h.run("powersync:unlink", name, backend)
        print(f"{'command':<11}{'wall':>8}{'in Dokku':>10}{'waits':>8}{'service':>9}{'own':>8}{'launch':>8}"
              f"   (medians of {runs} runs, seconds)")
        for command, samples in figures.items():
            wall, dokku, waits, service, own, launch = (statistics.median(values) for values in zip(*samples))
            print(f"{command:<11}{wall:>8.2f}{dokku:>10.2f}{waits:>8.2f}{service:>9.3f}{own:>8.3f}{launch:>8.3f}")
        print("own: the plugin process minus Dokku calls, readiness waits and PowerSync's answering time;")
        print("launch: outside the plugin process (the harness's `dokku` dispatch, the bash shims, interpreter start)")
    finally:
        h.cleanup()


if __name__ == "__main__":
    main()
