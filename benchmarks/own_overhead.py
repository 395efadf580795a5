"""The plugin's own time inside `link` and `set-rules`, excluding Dokku calls and readiness waits.

    .venv/bin/python benchmarks/own_overhead.py [--runs 3]

Runs the commands for real on the Dokku harness (tests/harness) with the PowerSync stand-in and a
Postgres service (build the images first: tests/setup-host). Each run's wall time is measured
around the whole `dokku powersync:...` process; the plugin reports (POWERSYNC_TIMINGS=1) the
seconds it spent inside Dokku calls and waiting for readiness, and the rest is its own time
(interpreter start, journal, planning, Docker API calls such as probes and the derived-image check).
Figures are printed, never asserted; the target is under 300 ms of own time.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.fixture import make_harness  # noqa: E402

RULES = "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM todos -- {}\n"
TIMINGS = re.compile(r"timings: total=([\d.]+) dokku=([\d.]+) waits=([\d.]+)")


def timed(h, *args, input=None):
    started = time.perf_counter()
    result = subprocess.run(["dokku", *args], input=input or "", capture_output=True, text=True,
                            env={**h.env, "POWERSYNC_TIMINGS": "1"})
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{args} failed:\n{result.stdout}{result.stderr}")
    match = TIMINGS.search(result.stderr)
    dokku, waits = float(match.group(2)), float(match.group(3))
    return wall, dokku, waits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    h = make_harness()
    try:
        assert h.install_plugin().returncode == 0
        assert h.run("postgres:create", "bench-db", "--config-options", "-c wal_level=logical").returncode == 0
        h.run("postgres:connect", "bench-db", input="CREATE TABLE todos (id text primary key);\nCREATE PUBLICATION powersync FOR ALL TABLES;\n")
        figures = {"link": [], "set-rules": []}
        for run in range(runs):
            backend, name = f"bench-api-{run}", f"bench-ps-{run}"
            h.run("apps:create", backend)
            h.run("postgres:link", "bench-db", backend)
            h.run("config:set", "--no-restart", backend, "SECRET_KEY=" + "b" * 64)
            h.run("powersync:create", name)
            h.run("domains:set", name, f"{name}.example.test")
            h.run("powersync:set-rules", name, input=RULES.format("initial"))
            figures["link"].append(timed(h, "powersync:link", name, backend))
            figures["set-rules"].append(timed(h, "powersync:set-rules", name, input=RULES.format(run)))
            h.run("powersync:unlink", name, backend)
        print(f"{'command':<12}{'wall':>9}{'in Dokku':>10}{'waits':>9}{'own':>9}   (medians of {runs} runs, seconds)")
        for command, samples in figures.items():
            wall, dokku, waits = (statistics.median(values) for values in zip(*samples))
            own = statistics.median(w - d - wt for w, d, wt in samples)
            print(f"{command:<12}{wall:>9.2f}{dokku:>10.2f}{waits:>9.2f}{own:>9.3f}")
    finally:
        h.cleanup()


if __name__ == "__main__":
    main()
