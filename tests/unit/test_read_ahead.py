"""Reads started ahead: all at once, each answer reused until forget(), errors kept for the taker;
and the deploy output that stands for the readiness probe after Dokku's switch."""
import threading

import pytest

from powersync_plugin.adapters.dokku import DokkuCommandFailed
from powersync_plugin.adapters.startup_checks import READINESS_CHECK, STAY_UP_CHECK, checks_passed
from powersync_plugin.read_ahead import ReadAhead


class FakeDokku:
    def __init__(self, expected: int = 0):
        self.calls: list[tuple] = []
        self.lock = threading.Lock()
        self.all_started = threading.Barrier(expected) if expected else None

    def config(self, app):
        with self.lock:
            self.calls.append(("config", app))
        if self.all_started:
            self.all_started.wait(timeout=5)  # returns only once every read runs at the same time
        return {"APP": app, "n": str(len(self.calls))}

    def postgres_dsn(self, service):
        with self.lock:
            self.calls.append(("postgres_dsn", service))
        raise DokkuCommandFailed(f"no service {service}", 1)


def test_reads_run_at_once_and_each_answer_serves_until_forget():
    dokku = FakeDokku(expected=3)
    reads = ReadAhead(dokku)
    reads.start(("config", "a"), ("config", "b"), ("config", "c"), ("config", "a"))
    assert reads.take("config", "a")["APP"] == "a"  # would time out the barrier if run one by one
    assert reads.take("config", "a") is reads.take("config", "a")
    assert sorted(dokku.calls) == [("config", "a"), ("config", "b"), ("config", "c")]
    reads.forget()
    dokku.all_started = None
    assert reads.take("config", "a")["n"] == "4"  # read afresh, not started ahead: a read now
    assert len(dokku.calls) == 4


def test_a_failed_read_raises_where_it_is_taken_and_an_untaken_one_is_ignored():
    dokku = FakeDokku()
    reads = ReadAhead(dokku)
    reads.start(("postgres_dsn", "gone"), ("config", "x"))
    with pytest.raises(DokkuCommandFailed, match="no service gone"):
        reads.take("postgres_dsn", "gone")
    reads.forget()  # the config read, never taken, is dropped without error


def test_only_both_checks_logged_as_passed_stand_for_dokkus_gate():
    ready = f"       Healthcheck succeeded name='{READINESS_CHECK}'\n"
    stayed = f"       Healthcheck succeeded name='{STAY_UP_CHECK}'\n"
    assert checks_passed("-----> Deploying web (count=1)\n" + ready + stayed)
    assert not checks_passed(ready)  # the uptime gate did not run (an image with older checks)
    assert not checks_passed("=====> Zero downtime checks have been skipped (web.1)\n")
    assert not checks_passed("")
