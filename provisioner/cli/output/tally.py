"""Where a run stands, counted from its events: what the live display and the keep-alive lines say."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from provisioner.apply.events import Event, Finished, PlanReady, StepDone, StepFailed, StepStarted
from provisioner.waits import Wait


@dataclass
class Tally:
    """Not thread-safe: its reporter calls it under its own lock."""

    clock: Callable[[], float] = time.time
    started: float | None = None  # the first step's start
    steps_total: int = 0
    steps_done: int = 0
    left: dict[str, int] = field(default_factory=dict)  # account -> runnable steps not done
    done: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)  # account -> error
    running: dict[str, str] = field(default_factory=dict)  # account -> step summary
    waits: dict[str, Wait] = field(default_factory=dict)  # account (or subject) -> its wait

    def on(self, event: Event) -> None:
        if isinstance(event, PlanReady):
            self.left = {
                acc.name: sum(1 for s in acc.steps if not s.blocked)
                for acc in event.plan.accounts
                if any(not s.blocked for s in acc.steps)
            }
            self.steps_total = sum(self.left.values())
        elif isinstance(event, Wait):
            key = event.account or event.subject
            if event.until > self.clock():
                self.waits[key] = event
            else:  # told again once over
                self.waits.pop(key, None)
        elif isinstance(event, StepStarted):
            if self.started is None:
                self.started = self.clock()
            self.waits.pop(event.step.account, None)
            self.running[event.step.account] = event.step.summary
        elif isinstance(event, StepDone):
            name = event.step.account
            self.waits.pop(name, None)
            self.running.pop(name, None)
            self.steps_done += 1
            self.left[name] = self.left.get(name, 1) - 1
            if self.left[name] <= 0 and name not in self.failed:
                self.done.add(name)
        elif isinstance(event, StepFailed):
            self.waits.pop(event.account, None)
            self.running.pop(event.account, None)
            self.failed[event.account] = event.error
        elif isinstance(event, Finished):
            self.running.clear()
            self.waits.clear()

    @property
    def accounts_total(self) -> int:
        return len(self.left)

    @property
    def accounts_left(self) -> int:
        return max(0, self.accounts_total - len(self.done) - len(self.failed))

    def active_waits(self) -> list[Wait]:
        now = self.clock()
        return sorted((w for w in self.waits.values() if w.until > now), key=lambda w: w.until)

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started

    def estimate(self) -> float | None:
        """Seconds left: the pace so far over the steps left, never less than the longest wait
        whose end is known."""
        if not self.steps_done:
            return None
        steps_left = max(0, self.steps_total - self.steps_done - self._skipped())
        pace = self.elapsed() / self.steps_done * steps_left
        waits = [w.until - self.clock() for w in self.active_waits() if not w.at_most]
        return max([pace, *waits])

    def _skipped(self) -> int:
        return sum(max(0, self.left.get(name, 0)) for name in self.failed)

    def headline(self) -> str:
        return (
            f"{len(self.done)} of {self.accounts_total} account(s) done, {len(self.failed)} failed, "
            f"{self.accounts_left} left; steps {self.steps_done} of {self.steps_total}"
        )

    def timing(self) -> str:
        text = f"{clock_text(self.elapsed())} elapsed"
        left = self.estimate()
        if left is not None:
            text += f", about {clock_text(left)} left"
        return text

    def waiting(self) -> list[str]:
        now = self.clock()
        return [w.describe(now) for w in self.active_waits()]


def clock_text(seconds: float) -> str:
    total = int(round(max(0.0, seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
