"""The change pipeline: the steps every mutating command takes, written once.

    with changing(s, name, dry_run) as state:   # lock; load; finish an interrupted change first
        new_events = decisions.decide_x(state)  # decide (pure); observe and plan; a dry run
                                                # prints the plan and returns here
        commit(s, state, new_events, apply, undo=..., failed=...)
                                                # append the intent; apply; on failure compensate,
                                                # record the failed outcome and say what was
                                                # restored; else record the success

A command whose intent is appended before it can apply it (publishing after set-rules, rotate,
upgrade, reconcile) appends with `Services.record` and settles the intent with `settle`.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Optional

from powersync_plugin.adapters.preload import JOURNAL_WRITER, Preload
from powersync_plugin.core import decisions
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.state import InstanceState
from powersync_plugin.read_ahead import Read
from powersync_plugin.services import Services

Apply = Callable[[InstanceState], object]
Undo = Callable[[DomainError], object]
Failed = Callable[[DomainError, bool], str]  # (the error, whether the undo succeeded) -> message


class CommandFailed(DomainError):
    """A change was attempted, failed, and was compensated (the message says how)."""


@contextmanager
def changing(
    s: Services, name: str, dry_run: bool = False, *, local_only: bool = True, finish_interrupted: bool = True,
    read_ahead: Optional[Callable[[InstanceState], Iterable[Read]]] = None,
) -> Iterator[InstanceState]:
    """Hold the instance's lock; yield its state, after finishing a change an earlier command left
    without outcome. `finish_interrupted=False` for commands that only record facts about an app
    not yet managed (create, adopt) or change no deployment (settings, reconcile itself).
    `read_ahead(state)`: the Dokku reads the change will take (read_ahead.py), started with the
    scheduler check, while the journal's writer (SQLAlchemy) is imported; not when an interrupted
    change must be finished first (it would change what they read)."""
    with s.lock(name):
        state = s.load(name)
        preload = None
        if read_ahead is not None and not (finish_interrupted and state.pending_intent is not None):
            preload = Preload(JOURNAL_WRITER)  # the intent is recorded before the change deploys
            s.reads.start(*((("scheduler", name),) if local_only else ()), *read_ahead(state))
        try:
            if local_only:
                s.require_local_scheduler(name)
            if finish_interrupted and state.pending_intent is not None:
                if dry_run:
                    s.out.warn(f"Revision {state.pending_intent} was interrupted: the real run reconciles it first")
                else:
                    s.out.step(f"Revision {state.pending_intent} was interrupted: reconciling before this command")
                    s.reconciler(s, state, False)
                    s.reads.forget()
                    state = s.load(name)
            if preload is not None:
                preload.wait()  # the change may import SQLAlchemy itself from here on
            yield state
        finally:
            s.reads.forget()


def commit(
    s: Services, state: InstanceState, intent: list[ev.NewEvent], apply: Optional[Apply] = None, *,
    undo: Optional[Undo] = None, failed: Optional[Failed] = None, then: Optional[Apply] = None,
) -> InstanceState:
    """Append the intent, then settle it (see `settle`); returns the state with the intent."""
    cause = state.version + 1  # the first event of the intent
    state = s.record(state, intent)
    settle(s, state, cause, apply, undo=undo, failed=failed, then=then)
    return state


def settle(
    s: Services, state: InstanceState, cause: int, apply: Optional[Apply] = None, *,
    undo: Optional[Undo] = None, failed: Optional[Failed] = None, then: Optional[Apply] = None,
) -> None:
    """Apply the recorded intent `cause` and record its outcome. On failure: run `undo`, record the
    failed outcome, and raise CommandFailed with `failed`'s message (without `failed`, the error
    itself). `then` runs after a successful apply and before the outcome, without compensation.
    Observations `apply` adds to `s.observations` follow the outcome in the stream."""
    s.observations.clear()
    try:
        if apply is not None:
            apply(state)
    except DomainError as exc:
        s.observations.clear()  # what was seen while failing is moot once compensated
        restored = compensate(s, lambda: undo(exc)) if undo is not None else False
        s.record(state, [decisions.outcome(cause, False, first_line(exc), restored)])
        if failed is None:
            raise
        raise CommandFailed(failed(exc, restored)) from None
    if then is not None:
        then(state)
    state = s.record(state, [decisions.outcome(cause, True)])
    if s.observations:  # e.g. rules.activated, seen while applying: recorded after the outcome
        observed, s.observations[:] = list(s.observations), []
        s.record(state, observed)


def compensate(s: Services, undo: Callable[[], object]) -> bool:
    try:
        undo()
        return True
    except DomainError as exc:
        s.out.warn(f"Could not restore: {exc}")
        return False


def first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0]


def restored_text(restored: bool, what: str) -> str:
    return f"Restored: {what}." if restored else "Could NOT restore everything: see the warnings above."
