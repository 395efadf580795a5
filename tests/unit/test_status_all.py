"""status --all without Docker: instances from a real journal, containers and service answers from
a fake engine. Each row says what runs and whether the service runs the journal's rules; the
probes of several instances overlap, never more than the bound at once."""
import json
import threading
import time
from types import SimpleNamespace

import pytest

from powersync_plugin import status_all
from powersync_plugin.adapters.docker_engine import HttpResult, ListedContainer
from powersync_plugin.adapters.journal import Journal, create_or_upgrade
from powersync_plugin.core import decisions
from powersync_plugin.core.projector import project
from powersync_plugin.read_model import summary_json

RULES = "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM todos\n"
OTHER = RULES + "# changed\n"


def diagnostics(active=None, deploying=None, lag=42):
    def section(content):
        return None if content is None else {
            "content": content, "errors": [],
            "connections": [{"slot_name": "powersync_1", "replication_lag_bytes": lag, "initial_replication_done": True}],
        }

    return {"data": {"connections": [{"connected": True, "errors": []}],
                     "active_sync_rules": section(active), "deploying_sync_rules": section(deploying)}}


class FakeDocker:
    """web_containers() and the in-container HTTP requests the probes make, with a delay so that
    overlapping requests can be counted."""

    def __init__(self, containers, answers, delay=0.05, reports=None):
        self.containers, self.answers, self.delay = containers, answers, delay
        self.reports = reports or {}  # container id -> the engine's health-check report
        self.client = object()
        self.in_flight = self.most_in_flight = 0
        self.requests = []
        self._lock = threading.Lock()

    def web_containers(self):
        return self.containers

    def health_report(self, container_id):
        return self.reports.get(container_id)

    def http(self, container_id, method, path, headers=None, body=None, timeout=5.0, **_):
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.requests.append((container_id, path, body, headers.get("Authorization") if headers else None))
        time.sleep(self.delay)
        with self._lock:
            self.in_flight -= 1
        if path == "/probes/readiness":
            return HttpResult(200 if self.answers[container_id].get("ready", True) else 503, "{}")
        payload = self.answers[container_id].get("diagnostics")
        return HttpResult(200, json.dumps(payload)) if payload is not None else HttpResult(401, "")


@pytest.fixture
def journal(tmp_path, monkeypatch):
    monkeypatch.setenv("POWERSYNC_DATA_ROOT", str(tmp_path))
    create_or_upgrade(tmp_path / "journal.sqlite3")
    return Journal(tmp_path / "journal.sqlite3")


def add_instance(journal, name, rules=None, linked=False):
    def record(new_events):
        version = project(name, journal.load(name)).version
        journal.append(name, version, new_events, "tester", "cmd")

    record(decisions.decide_create(project(name, []), name, "journeyapps/powersync-service", "1.25.0", "400m",
                                   "separate-database", f"token-{name}", None))
    record([decisions.outcome(1, True)])
    if rules is not None:
        state = project(name, journal.load(name))
        record(decisions.decide_set_rules(state, rules))
        record([decisions.outcome(project(name, journal.load(name)).version, True)])
    if linked:
        state = project(name, journal.load(name))
        record(decisions.decide_link(state, f"{name}-api", "db", "f1", "f2", (f"{name}-api",), None, "http://x",
                                     f"powersync_{name}", "disable", "disable"))
        record([decisions.outcome(project(name, journal.load(name)).version, True)])
    state = project(name, journal.load(name))
    journal.save_summary(name, state.version, summary_json(state))


def run(journal, containers, answers, **fake):
    docker = FakeDocker(containers, answers, **fake)
    return {row["name"]: row for row in status_all.status_all(SimpleNamespace(docker=docker, journal=journal))}, docker


def test_each_instance_gets_its_state_and_whether_the_service_runs_its_rules(journal):
    add_instance(journal, "on", RULES, linked=True)
    add_instance(journal, "drifted", RULES, linked=True)
    add_instance(journal, "reprocessing", RULES, linked=True)
    add_instance(journal, "unready", RULES, linked=True)
    add_instance(journal, "stopped", RULES, linked=True)
    add_instance(journal, "gone", RULES, linked=True)
    add_instance(journal, "stored", RULES)
    add_instance(journal, "bare")
    containers = {name: ListedContainer(f"id-{name}", "dokku-powersync/powersync-service:1.25.0-abc", name != "stopped")
                  for name in ("on", "drifted", "reprocessing", "unready", "stopped")}
    answers = {
        "id-on": {"diagnostics": diagnostics(active=RULES, lag=7)},
        "id-drifted": {"diagnostics": diagnostics(active=OTHER)},
        "id-reprocessing": {"diagnostics": diagnostics(active=OTHER, deploying=RULES)},
        "id-unready": {"ready": False, "diagnostics": None},
    }
    rows, docker = run(journal, containers, answers)
    picked = {name: (row["state"], row["rules_revision"], row["rules_on_service"], row["ready"], row["lag_bytes"])
              for name, row in rows.items()}
    assert picked == {
        "on": ("running", "r1", "active", True, 7),
        "drifted": ("running", "r1", "differs", True, 42),
        "reprocessing": ("running", "r1", "deploying", True, 42),
        "unready": ("running", "r1", "unknown", False, None),
        "stopped": ("stopped", "r1", None, False, None),
        "gone": ("missing", "r1", None, False, None),
        "stored": ("not deployed", "r1", None, None, None),
        "bare": ("not deployed", None, None, None, None),
    }
    assert rows["on"]["image_version"] == "1.25.0" and rows["on"]["running_image"].endswith(":1.25.0-abc")
    # each probe carries its own instance's token and asks for the rules' content
    diagnostics_requests = [r for r in docker.requests if r[1] == "/api/admin/v1/diagnostics"]
    assert sorted((r[0], r[3]) for r in diagnostics_requests) == [
        ("id-drifted", "Bearer token-drifted"), ("id-on", "Bearer token-on"),
        ("id-reprocessing", "Bearer token-reprocessing"), ("id-unready", "Bearer token-unready"),
    ]
    assert {json.loads(r[2])["sync_rules_content"] for r in diagnostics_requests} == {True}


def test_probes_overlap_but_never_beyond_the_bound(journal, monkeypatch):
    for index in range(6):
        add_instance(journal, f"ps{index}", RULES, linked=True)
    containers = {f"ps{i}": ListedContainer(f"id-{i}", "img", True) for i in range(6)}
    answers = {f"id-{i}": {"diagnostics": diagnostics(active=RULES)} for i in range(6)}
    monkeypatch.setenv("POWERSYNC_STATUS_CONCURRENCY", "3")
    started = time.monotonic()
    rows, docker = run(journal, containers, answers, delay=0.2)
    elapsed = time.monotonic() - started
    assert {row["rules_on_service"] for row in rows.values()} == {"active"}
    assert len(docker.requests) == 12 and docker.most_in_flight == 3
    assert elapsed < 12 * 0.2 * 0.6  # 12 requests of 0.2 s, 3 at a time: about 0.8 s, not 2.4 s


def test_no_container_listing_and_no_probe_for_a_host_without_instances(journal):
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"docker.{name} used")

    assert status_all.status_all(SimpleNamespace(docker=Untouchable(), journal=journal)) == []


@pytest.mark.parametrize("payload, expected", [
    (diagnostics(active=RULES), "active"),
    (diagnostics(active=RULES.rstrip("\n")), "differs"),  # byte for byte, as the service compares
    (diagnostics(active=OTHER, deploying=RULES), "deploying"),
    (diagnostics(active=RULES, deploying=OTHER), "active"),
    (diagnostics(), "none active"),
    ({"data": {"active_sync_rules": {"connections": []}}}, "unknown"),
])
def test_rules_on_service(payload, expected):
    assert status_all.rules_on_service(payload, RULES) == expected
    assert status_all.rules_on_service(payload, None) is None


def test_the_screen_is_one_aligned_line_per_instance():
    rows = [
        {**status_all._row({"name": "jeeves-powersync", "version": "1.25.0", "linked_backend": "jeeves", "rules_revision": "r12"}),
         "state": "running", "rules_on_service": "active", "ready": True, "lag_bytes": 6536,
         "checked_by": "health check", "checked_seconds_ago": 12},
        status_all._row({"name": "b", "version": "1.26.0", "linked_backend": "", "rules_revision": ""}),
    ]
    assert status_all.lines(rows) == [
        "=====> PowerSync instances: 2 (1 not deployed, 1 running)",
        "NAME              STATE         IMAGE   RULES  ON SERVICE  READY  LAG     ERRORS  CHECKED",
        "jeeves-powersync  running       1.25.0  r12    active      yes    6536 B  -       12s ago",
        "b                 not deployed  1.26.0  -      -           -      -       -       -",
    ]


def hashed(payload):
    """diagnostics() as the engine's health check reports it: the rules as their sha256."""
    import hashlib

    data = json.loads(json.dumps(payload))["data"]
    for key in ("active_sync_rules", "deploying_sync_rules"):
        if data[key] is not None:
            data[key]["content_sha256"] = hashlib.sha256(data[key].pop("content").encode()).hexdigest()
    return data


def test_instances_with_a_fresh_health_check_are_not_probed_live(journal):
    from powersync_plugin.adapters.health_check import HealthReport

    for name in ("checked", "reprocessing", "unready", "fresh-start"):
        add_instance(journal, name, RULES, linked=True)
    containers = {name: ListedContainer(f"id-{name}", "img", True) for name in ("checked", "reprocessing", "unready", "fresh-start")}
    reports = {
        "id-checked": HealthReport(True, hashed(diagnostics(active=RULES, lag=9)), "t", 12.4),
        "id-reprocessing": HealthReport(True, hashed(diagnostics(active=OTHER, deploying=RULES)), "t", 3.0),
        "id-unready": HealthReport(False, None, "t", 40.0),
    }
    answers = {"id-fresh-start": {"diagnostics": diagnostics(active=RULES, lag=5)}}
    rows, docker = run(journal, containers, answers, reports=reports)
    picked = {name: (row["ready"], row["rules_on_service"], row["lag_bytes"], row["checked_by"], row["checked_seconds_ago"])
              for name, row in rows.items()}
    assert picked == {
        "checked": (True, "active", 9, "health check", 12),
        "reprocessing": (True, "deploying", 42, "health check", 3),
        "unready": (False, "unknown", None, "health check", 40),
        "fresh-start": (True, "active", 5, "live probe", 0),  # no report yet: probed live, just now
    }
    assert {request[0] for request in docker.requests} == {"id-fresh-start"}


@pytest.mark.parametrize("section, expected", [
    ({"content_sha256": __import__("hashlib").sha256(RULES.encode()).hexdigest()}, "active"),
    ({"content_sha256": __import__("hashlib").sha256(OTHER.encode()).hexdigest()}, "differs"),
])
def test_rules_on_service_from_a_digest(section, expected):
    assert status_all.rules_on_service({"active_sync_rules": section}, RULES) == expected
