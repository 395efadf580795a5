"""The issue-13 ratios, measured through the harness's own `dokku` entry point.

    .venv/bin/python benchmarks/ratios.py [--runs 5] [--restart-runs 3] [--no-restarts] [--no-reads] [--plugin CHECKOUT]

`--plugin` installs another checkout of the plugin instead of this tree (a "before" figure).

Reads: median wall time of `dokku apps:list` (the harness's own Dokku command) against
`dokku powersync:list`, `info`, `exists`, `history`, `links`, `linked`, with journals of 1,000 and
100,000 events (filled as benchmarks/read_commands.py does, in the harness's data root, with
the Dokku apps of the instances created). Target: each at most 2x `apps:list`.
Restarts: median of `dokku ps:restart` of a linked instance (the stand-in image, a dokku-postgres
source) against `powersync:set-rules` with a real change, `powersync:rotate` after the backend's
SECRET_KEY changed and `powersync:upgrade` (alternating 1.26.0 / 1.25.0, derived images built
once, on the first two runs) and `powersync:set NAME log-level` (alternating debug / info: a
setting republished with a restart). Targets: set-rules 0.2x, the others 1.1x. `ps:restart` runs the
same startup checks (Dokku keeps the app.json of the deployed image), stay-up window included.
Dispatcher: how much the harness's Python `dokku` adds before any command runs (`dokku version`
`dokku apps:exists no-such-app`, its cheapest command, against a bare start of the same
interpreter). Real Dokku's `dokku` is a bash script and its
`apps:list` a Go binary, so the harness's `apps:list` is slower than a real host's: the ratios
here are conservative by about the dispatcher's cost divided into `apps:list`.
Figures are printed, never asserted. The last line (`ratios: ...`) is what CI's summary shows.
"""
from __future__ import annotations

import argparse
import os
import pwd
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from read_commands import fill  # noqa: E402
from tests.harness.fixture import make_harness  # noqa: E402
from tests.images.names import STANDIN_REPO  # noqa: E402

from powersync_plugin.adapters.journal import create_or_upgrade  # noqa: E402

READS = {
    "list": ["powersync:list"],
    "info": ["powersync:info", "big"],
    "exists": ["powersync:exists", "big"],
    "history": ["powersync:history", "big"],
    "links": ["powersync:links", "big"],
    "linked": ["powersync:linked", "big", "bench-api"],
}
# `linked` answers "not linked" with exit 1 (the benchmark instances have no links): that is a
# successful read.
ACCEPTED_EXIT = {"linked": (0, 1)}
RULES = "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM todos -- {}\n"


def wall(h, *args, input=None, check=True, accept=(0,)) -> float:
    started = time.perf_counter()
    result = subprocess.run(["dokku", *args], input=input or "", capture_output=True, text=True, env=h.env)
    elapsed = time.perf_counter() - started
    if check and result.returncode not in accept:
        raise RuntimeError(f"dokku {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return elapsed


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def bare_start(runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return median(times)


def load_journal(h, total: int) -> None:
    """A fresh journal of `total` events in the harness's data root, read model built."""
    data_root = h.root / "var/lib/dokku/services/powersync"
    journal = data_root / "journal.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{journal}{suffix}").unlink(missing_ok=True)
    create_or_upgrade(journal)
    fill(journal, total)
    env = {**os.environ, "POWERSYNC_DATA_ROOT": str(data_root), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "powersync_plugin.maintenance", "migrate"], env=env, check=True,
                   capture_output=True)
    owner = data_root.stat()
    for path in data_root.glob("journal.sqlite3*"):
        os.chown(path, owner.st_uid, owner.st_gid)
    with sqlite3.connect(journal) as connection:
        assert connection.execute("SELECT count(*) FROM events").fetchone()[0] >= total


def reads(h, runs: int) -> dict:
    for app in ["big", "bench-api", *(f"small-{i}" for i in range(9))]:
        h.run("apps:create", app)
    results = {}
    for total in (1_000, 100_000):
        load_journal(h, total)
        row, timed = {}, ["apps:list"]
        for name, args in READS.items():
            try:
                wall(h, *args, accept=ACCEPTED_EXIT.get(name, (0,)))  # warms the page cache, and a failing command is not timed
            except RuntimeError as exc:
                print(f"{name}: FAILED, not timed: {str(exc).splitlines()[-1]}")
                row[name] = float("nan")
                continue
            timed.append(name)
        # Rounds of apps:list and every read in turn, so that a changing load weighs on all alike.
        samples: dict[str, list[float]] = {name: [] for name in timed}
        for _ in range(runs):
            samples["apps:list"].append(wall(h, "apps:list"))
            for name in timed[1:]:
                samples[name].append(wall(h, *READS[name], accept=ACCEPTED_EXIT.get(name, (0,))))
        row.update({name: median(values) for name, values in samples.items()})
        results[total] = row
    return results


def restarts(h, runs: int) -> dict:
    # Container names are global to the Docker engine, which another run may share.
    tag = uuid.uuid4().hex[:4]
    database, backend, name = f"bench-db-{tag}", f"bench-backend-{tag}", f"bench-ps-{tag}"
    assert h.run("postgres:create", database, "--config-options", "-c wal_level=logical").returncode == 0
    h.run("postgres:connect", database,
          input="CREATE TABLE todos (id text primary key);\nCREATE PUBLICATION powersync FOR ALL TABLES;\n")
    h.run("apps:create", backend)
    h.run("postgres:link", database, backend)
    h.run("config:set", "--no-restart", backend, "SECRET_KEY=" + "b" * 64)
    wall(h, "powersync:create", name, "--image", STANDIN_REPO)
    wall(h, "domains:set", name, f"{name}.example.test")  # link gives the backend POWERSYNC_URL
    wall(h, "powersync:set-rules", name, input=RULES.format("initial"))
    wall(h, "powersync:link", name, backend)
    # rotate must have something to rotate: the backend's SECRET_KEY changes before each run
    # (untimed; auto-rotate off, so that change only marks the instance stale).
    wall(h, "powersync:set", name, "auto-rotate", "false")
    figures = {"ps:restart": [], "set-rules": [], "rotate": [], "upgrade": [], "set": []}
    for run in range(runs):
        figures["ps:restart"].append(wall(h, "ps:restart", name))
        figures["set-rules"].append(wall(h, "powersync:set-rules", name, input=RULES.format(run)))
        wall(h, "config:set", "--no-restart", backend, "SECRET_KEY=" + f"{run:x}" * 64)
        figures["rotate"].append(wall(h, "powersync:rotate", name))
        target = ["--image-version", "1.26.0"] if run % 2 == 0 else ["--image-version", "1.25.0", "--force"]
        figures["upgrade"].append(wall(h, "powersync:upgrade", name, *target))
        # a setting that shapes the service's config: republished with a restart
        figures["set"].append(wall(h, "powersync:set", name, "log-level", "debug" if run % 2 == 0 else "info"))
    return {key: median(values) for key, values in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--restart-runs", type=int, default=3)
    parser.add_argument("--no-restarts", action="store_true")
    parser.add_argument("--no-reads", action="store_true")
    parser.add_argument("--plugin", type=Path, default=ROOT, help="the checkout to install [default: this tree]")
    options = parser.parse_args()
    h = make_harness()
    summary = []
    try:
        assert h.install_plugin(options.plugin.resolve()).returncode == 0, "plugin:install failed"
        bare = bare_start(options.runs)
        noop = median([wall(h, "apps:exists", "no-such-app", check=False) for _ in range(options.runs)])
        print(f"dispatcher: bare interpreter start {bare * 1000:.0f} ms, harness `dokku apps:exists` {noop * 1000:.0f} ms "
              f"(the harness's Python dispatcher adds {max(noop - bare, 0) * 1000:.0f} ms to every command)")
        summary.append(f"dispatcher +{max(noop - bare, 0) * 1000:.0f}ms")
        if not options.no_reads:
            results = reads(h, options.runs)
            print(f"\n{'command':<12}{'1,000 events':>14}{'ratio':>7}{'100,000 events':>16}{'ratio':>7}"
                  f"   (medians of {options.runs}; ratio = / apps:list, target <= 2.00)")
            for name in ["apps:list", *READS]:
                small, large = results[1_000][name], results[100_000][name]
                print(f"{name:<12}{small * 1000:>12.0f}ms{small / results[1_000]['apps:list']:>7.2f}"
                      f"{large * 1000:>14.0f}ms{large / results[100_000]['apps:list']:>7.2f}")
            worst = max(results[100_000][n] / results[100_000]["apps:list"] for n in READS)
            summary.append(f"reads at 100k {worst:.2f}x apps:list (worst of {len(READS)})")
        if not options.no_restarts:
            figures = restarts(h, options.restart_runs)
            base = figures["ps:restart"]
            print(f"\n{'command':<12}{'median':>9}{'ratio':>7}   (medians of {options.restart_runs}; "
                  "ratio = / ps:restart; targets set-rules <= 0.20, rotate/upgrade/set <= 1.10)")
            for name, value in figures.items():
                print(f"{name:<12}{value:>8.2f}s{value / base:>7.2f}")
            summary.append("set-rules {:.2f}x rotate {:.2f}x upgrade {:.2f}x set {:.2f}x ps:restart ({:.1f}s)".format(
                figures["set-rules"] / base, figures["rotate"] / base, figures["upgrade"] / base, figures["set"] / base, base))
    finally:
        h.cleanup()
    print("ratios: " + ", ".join(summary))


if __name__ == "__main__":
    main()
