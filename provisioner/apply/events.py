"""What an apply tells whoever watches it: typed events, sent to a ``Reporter`` the caller supplies.

apply/ never prints. The CLI's reporter renders these as the lines ``provision apply``
shows; another can render a live display or write one JSON object per event. Events
carry no secret: messages in them have passed the run's redactor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from provisioner.apply.lock import LockInfo
from provisioner.plan.model import Plan, Step


@dataclass(frozen=True)
class PlanReady:
    """The plan this run will carry out (after the look under the locks, the one approved)."""

    plan: Plan


@dataclass(frozen=True)
class NothingToApply:
    pass


@dataclass(frozen=True)
class AccountBusy:
    """Another apply holds this account's lock: left to it."""

    account: str
    holder: LockInfo


@dataclass(frozen=True)
class StepStarted:
    step: Step


@dataclass(frozen=True)
class StepDone:
    step: Step


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
    done: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: str | None = None  # the step id, or "journal"
    error: str | None = None
    tx_hashes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finished:
    """The run's summary: every account worked on, and how many were left to another run."""

    results: tuple[AccountResult, ...]
    busy: int = 0

    @property
    def failed(self) -> tuple[AccountResult, ...]:
        return tuple(r for r in self.results if r.failed)

    @property
    def steps_done(self) -> int:
        return sum(len(r.done) for r in self.results)


Event = (
    PlanReady
    | NothingToApply
    | AccountBusy
    | StepStarted
    | StepDone
    | StepFailed
    | Cancelled
    | Finished
)


Reporter = Callable[[Event], None]
"""Receives every event of a run, in order; step events come from the executor's threads."""


def discard(_event: Event) -> None:
    """A reporter for callers that only want the result."""
