"""What every use case is given: the output, the adapters, the journal and the instance lock.

Built once per command by wiring.py; a use case reaches the outside world only through these.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from powersync_plugin import settings
from powersync_plugin.adapters.docker_engine import DockerEngine
from powersync_plugin.adapters.dokku import Dokku
from powersync_plugin.adapters.journal import Journal
from powersync_plugin.adapters.locks import instance_lock
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.planner import Plan
from powersync_plugin.core.projector import apply, project
from powersync_plugin.core.state import InstanceState
from powersync_plugin.output import Output
from powersync_plugin.read_ahead import ReadAhead
from powersync_plugin.read_model import summary_json
from powersync_plugin.source_database import SourceDatabase

# Finishes a change an earlier command left without outcome (reconcile.reconcile_locked, given
# by wiring.py, so that the pipeline needs no import of the use cases that reconcile calls).
Reconciler = Callable[["Services", InstanceState, bool], None]


@dataclass
class Services:
    out: Output
    dokku: Dokku
    docker: DockerEngine
    actor: str
    command: str
    reconciler: Reconciler
    source_db: SourceDatabase = field(init=False)
    reads: ReadAhead = field(init=False)  # Dokku reads started ahead of the step that takes them
    # observations made while applying a change, recorded after its outcome (pipeline.settle)
    observations: list = field(default_factory=list)
    waited: float = 0.0  # seconds spent waiting for readiness and stay-up (benchmarks subtract it)
    # set by a publish whose rules the service keeps retrying (rules_delivery.ensure): what
    # set-rules reports as its error once the publish is settled
    rules_retrying: str = ""
    _journal: Optional[Journal] = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.source_db = SourceDatabase(self.dokku)
        self.reads = ReadAhead(self.dokku)

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(settings.journal_path())
        return self._journal

    def load(self, name: str) -> InstanceState:
        return project(name, self.journal.load(name))

    def record(self, state: InstanceState, new_events: list[ev.NewEvent]) -> InstanceState:
        """Append events to the instance's stream (a stale version is refused) and keep its
        read-model row current."""
        stored = self.journal.append(state.name, state.version, new_events, self.actor, self.command)
        for event in stored:
            state = apply(state, event)
        self.journal.save_summary(state.name, state.version, summary_json(state))
        return state

    def lock(self, name: str):
        return instance_lock(settings.locks_dir(), name, self.out.step, settings.seconds("POWERSYNC_LOCK_TIMEOUT", 600))

    def require_local_scheduler(self, name: str) -> None:
        """The plugin observes and stops instances through the local Docker engine: an instance app
        moved to another scheduler (scheduler-k3s) would be half-handled, so it is refused."""
        scheduler = self.reads.take("scheduler", name)
        if scheduler not in (None, "docker-local"):
            raise DomainError(
                f"{name} runs on the {scheduler} scheduler; dokku-powersync manages instances on docker-local only "
                f"(it reads their containers from the local Docker engine). Nothing changed. Move it back with "
                f"`dokku scheduler:set {name} selected docker-local` and `dokku ps:rebuild {name}`"
            )

    def is_running(self, name: str) -> bool:
        container = self.docker.web_container(name)
        return bool(container and container.running)

    def print_plan(self, plan: Plan) -> None:
        self.out.header("Plan (dry run: nothing changed)")
        for line in plan.lines():
            self.out.detail(line)
