"""What an apply tells whoever watches it: typed events, sent to a ``Reporter`` the caller supplies.

apply/ never prints. The CLI's reporter renders these as the lines ``provision apply``
shows; another can render a live display or write one JSON object per event. Events
carry no secret: messages in them have passed the run's redactor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from provisioner.apply.lease import LeaseRecord, Takeover
from provisioner.plan.model import Plan, Step
from provisioner.waits import Wait


@dataclass(frozen=True)
class PlanReady:
    """The plan this run will carry out (after the look under the locks, the one approved)."""

    plan: Plan


@dataclass(frozen=True)
class NothingToApply:
    pass


@dataclass(frozen=True)
class AccountBusy:
    """Another apply holds this account's lock: left to it. ``message`` says whose lease it
    is, and what to do (wait, or, for a holder on another host only, ``--force-unlock``)."""

    account: str
    holder: LeaseRecord
    message: str


@dataclass(frozen=True)
class LeaseTakenOver:
    """This run took a lease (the run's or an account's) from a run that is gone."""

    takeover: Takeover


@dataclass(frozen=True)
class LeaseWaiting:
    """A live lease stands in the way: watched until it expires (taken) or is renewed."""

    message: str


@dataclass(frozen=True)
class LeaseTrouble:
    """A renewal of this run's lease failed; it is tried again, and the fence refuses to act
    once the lease is lost."""

    message: str


@dataclass(frozen=True)
class StepStarted:
    step: Step


@dataclass(frozen=True)
class Outcome:
    """What a step actually did, with the numbers it used: a reporter shows this, not the plan's
    summary, so an amount planned but not paid is never shown as done. ``changed``: False when
    the step found nothing to do (``text`` then says what it found)."""

    changed: bool
    text: str


@dataclass(frozen=True)
class StepDone:
    step: Step
    outcome: Outcome


@dataclass(frozen=True)
class StepFailed:
    """``step`` is None when settling the account's journal failed, before any step."""

    account: str
    step: Step | None
    error: str


@dataclass(frozen=True)
class Cancelled:
    """The person asked declined."""


@dataclass(frozen=True)
class AccountResult:
    name: str
    done: tuple[str, ...] = ()  # steps that changed something
    skipped: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()  # steps that ran and found nothing to do
    failed: str | None = None  # the step id, or "journal"
    error: str | None = None
    tx_hashes: tuple[str, ...] = ()
    not_started: tuple[str, ...] = ()  # the run was stopped by a signal before these
    in_flight: str | None = None  # abandoned mid-way at the drain deadline (journaled)


@dataclass(frozen=True)
class Finished:
    """The run's summary: every account worked on, and how many were left to another run."""

    results: tuple[AccountResult, ...]
    busy: int = 0

    @property
    def failed(self) -> tuple[AccountResult, ...]:
        return tuple(r for r in self.results if r.failed)

    @property
    def abandoned(self) -> bool:
        """Calls were still in flight when a stopped run's drain ran out."""
        return any(r.in_flight for r in self.results)

    @property
    def steps_done(self) -> int:
        """Steps that changed something; those that found nothing to do are ``steps_unchanged``."""
        return sum(len(r.done) for r in self.results)

    @property
    def steps_unchanged(self) -> int:
        return sum(len(r.unchanged) for r in self.results)


Event = (
    PlanReady
    | NothingToApply
    | AccountBusy
    | LeaseTakenOver
    | LeaseWaiting
    | LeaseTrouble
    | StepStarted
    | StepDone
    | StepFailed
    | Cancelled
    | Finished
    | Wait
)


Reporter = Callable[[Event], None]
"""Receives every event of a run, in order; step events come from the executor's threads, and
``Wait`` from whichever client thread is about to wait (the session's ``on_wait``)."""


def discard(_event: Event) -> None:
    """A reporter for callers that only want the result."""
