"""Median wall time of the read commands against journals of 1,000 and 100,000 events.

    .venv/bin/python benchmarks/read_commands.py [--runs 7] [--baseline CHECKOUT]

`--baseline` times another checkout of the plugin (e.g. `git worktree add /tmp/before <commit>`)
on the same journals, its runs alternating with this tree's so that a machine's changing load
weighs on both alike: the before/after of the README's Performance section.

Each figure is a whole `python -m powersync_plugin` process, as Dokku runs it (interpreter start
included), against a journal in a temporary data root: 10 instances, one of which ("big") holds
the bulk of the events (alternating rules revisions and their outcomes). No Docker container
exists for the instances, so `info` pays one Docker API call that answers "missing".
Each tree runs as its own install trigger leaves it (precompiled when its hooks/install runs
compileall, else from a copy without any .pyc), with PYTHONDONTWRITEBYTECODE and from a neutral
directory, as hooks/_launch runs the installed plugin.
Figures are printed, never asserted: targets are read commands under 150 ms median and at most
1.3x between 1,000 and 100,000 events.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from powersync_plugin.adapters.journal import create_or_upgrade  # noqa: E402

COMMANDS = {
    "list": ["powersync:list"],
    "info": ["powersync:info", "big"],
    "exists": ["powersync:exists", "big"],
    "history": ["powersync:history", "big"],
    "history --limit 20": ["powersync:history", "big", "--limit", "20"],
    "history --all": ["powersync:history", "big", "--all"],
    "links": ["powersync:links", "big"],
    "linked": ["powersync:linked", "big", "bench-api"],  # not linked: exit 1, a successful read
}


def fill(path: Path, total_events: int) -> None:
    rows = []
    rules = "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM lists -- {}\n"
    created = {
        "image": "dokku-powersync-test/powersync-service", "image_version": "1.25.0", "memory_mb": 400,
        "storage": "separate-database", "api_token": "t" * 43, "slot_prefix": "ps_x_",
    }
    sequence = 0

    def add(stream, version, type_, payload):
        nonlocal sequence
        sequence += 1
        rows.append((sequence, stream, version, type_, 1, json.dumps(payload, sort_keys=True), "2026-01-01T00:00:00Z", "bench", "dokku powersync:bench"))

    for index in range(9):
        stream = f"small-{index}"
        add(stream, 1, "instance.created", {**created, "slot_prefix": f"ps_small_{index}_"})
        add(stream, 2, "deploy.succeeded", {"cause": 1})
    add("big", 1, "instance.created", created)
    add("big", 2, "deploy.succeeded", {"cause": 1})
    version = 2
    while sequence < total_events:
        version += 1
        add("big", version, "rules.set", {"content": rules.format(version), "digest": f"{version:064x}", "description": "Set rules"})
        version += 1
        add("big", version, "deploy.succeeded", {"cause": version - 1})
    with sqlite3.connect(path) as connection:
        connection.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def as_installed(tree: Path, scratch: Path) -> Path:
    """`tree` as its install trigger leaves the plugin: precompiled if it runs compileall, else a
    copy of the package without .pyc files (commands then compile every module they import)."""
    if "compileall" in (tree / "hooks/install").read_text():
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "powersync_plugin")], check=True,
                       capture_output=True)
        return tree
    shutil.copytree(tree / "powersync_plugin", scratch / "powersync_plugin", ignore=shutil.ignore_patterns("__pycache__"))
    return scratch


def medians_ms(args: list[str], envs: dict[str, dict], runs: int, cwd: str) -> dict[str, float]:
    """One run per tree in turn, `runs` times: each tree's median."""
    times: dict[str, list[float]] = {tree: [] for tree in envs}
    for _ in range(runs):
        for tree, env in envs.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "powersync_plugin", *args], env=env, cwd=cwd, capture_output=True, check=False)
            times[tree].append((time.perf_counter() - started) * 1000)
    return {tree: statistics.median(values) for tree, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout, timed alternately")
    options = parser.parse_args()
    copies = tempfile.TemporaryDirectory()
    trees = {"now": ROOT, **({"before": options.baseline.resolve()} if options.baseline else {})}
    trees = {name: as_installed(tree, Path(copies.name) / name) for name, tree in trees.items()}
    results: dict[int, dict[str, dict[str, float]]] = {}
    for total in (1_000, 100_000):
        with tempfile.TemporaryDirectory() as tmp:
            data_root = Path(tmp)
            journal = data_root / "journal.sqlite3"
            create_or_upgrade(journal)
            fill(journal, total)
            base_env = {**os.environ, "POWERSYNC_DATA_ROOT": str(data_root), "PYTHONDONTWRITEBYTECODE": "1"}
            envs = {name: {**base_env, "PYTHONPATH": str(tree)} for name, tree in trees.items()}
            # The events were inserted behind the plugin's back: build the read model as the
            # install trigger does after a migration (the plugin maintains it on every append).
            subprocess.run([sys.executable, "-m", "powersync_plugin.maintenance", "migrate"], env=envs["now"], check=True)
            results[total] = {name: medians_ms(args, envs, options.runs, tmp) for name, args in COMMANDS.items()}
    if options.baseline is None:
        print(f"{'command':<22}{'1,000 events':>14}{'100,000 events':>16}{'ratio':>8}")
        for name in COMMANDS:
            small, large = results[1_000][name]["now"], results[100_000][name]["now"]
            print(f"{name:<22}{small:>12.0f}ms{large:>14.0f}ms{large / small:>8.2f}")
        return
    print(f"{'command':<22}{'1,000: before':>15}{'now':>8}{'100,000: before':>17}{'now':>8}   (medians of {options.runs})")
    for name in COMMANDS:
        small, large = results[1_000][name], results[100_000][name]
        print(f"{name:<22}{small['before']:>13.0f}ms{small['now']:>6.0f}ms{large['before']:>15.0f}ms{large['now']:>6.0f}ms")


if __name__ == "__main__":
    main()
