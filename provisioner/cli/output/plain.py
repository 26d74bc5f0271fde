"""Plain lines, for logs and terminals without control codes: what ``provision apply`` prints in CI.

Every line is whole (``Lines``) and starts with its account's name, unless it is the plan,
a summary, or a keep-alive line. While the run waits, a line every ``keepalive`` seconds
says for what, so that a CI job's log does not look hung for a minute of v3's write window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from provisioner.apply.events import (
    Event,
    Finished,
    PlanReady,
    StepDone,
    StepStarted,
)
from provisioner.cli.output.lines import Lines, printable, styled
from provisioner.cli.output.notices import notice
from provisioner.cli.output.tally import Tally
from provisioner.plan.render import render_text
from provisioner.redact import Redactor
from provisioner.waits import Wait

KEEPALIVE_SECONDS = 30.0
_LISTED = 20  # accounts named one by one in a stopped run's summary
WAIT_LINE_FROM = 5.0  # seconds: shorter waits only show in the keep-alive lines


class PlainReporter:
    """The plan and results on stdout, progress on stderr; ``color``: the plan's symbols only."""

    def __init__(
        self,
        redactor: Redactor,
        lines: Lines,
        *,
        color: bool = False,
        compact: bool | None = None,
        keepalive: float = KEEPALIVE_SECONDS,
    ) -> None:
        # a step's words and errors carry text from Vault, dYdX and signers: no control code of theirs
        self.redact: Callable[[str], str] = lambda text: redactor.redact(printable(text))
        self.lines = lines
        self.color = color
        self.compact = compact
        self.keepalive = keepalive
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> PlainReporter:
        return self

    def __exit__(
        self,
        _t: type[BaseException] | None,
        _e: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.tally.on(event)
        if isinstance(event, PlanReady):
            text = render_text(event.plan, color=self.color, compact=self.compact)
            self.lines.out(styled(self.redact(text), color=self.color))
        elif (said := notice(event)) is not None:
            self.lines.out(said.line) if said.result else self._err(said.line)
        elif isinstance(event, StepStarted):
            self._err(f"  {event.step.account}: {event.step.summary} ...")
        elif isinstance(event, StepDone):  # what the step did, not what was planned
            self._err(f"  {event.step.account}: {done_line(event)}")
        elif isinstance(event, Wait):
            self._start_ticker()
            now = self.tally.clock()
            if not event.at_most and event.until - now >= WAIT_LINE_FROM:
                if event.account:
                    self._err(f"  {event.account}: waiting: {event.what}: {event.left(now)}")
                else:
                    self._err(f"waiting: {event.describe(now)}")
        elif isinstance(event, Finished):
            self._stop.set()
            summarize(event, self.lines, self.redact)
        # a StepFailed is named once, in the summary at the end

    def _err(self, line: str) -> None:
        self.lines.err(self.redact(line))

    def _start_ticker(self) -> None:
        with self._lock:
            if self._ticker is not None or self._stop.is_set():
                return
            self._ticker = threading.Thread(target=self._tick, name="keepalive", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.keepalive):
            with self._lock:
                waiting = self.tally.waiting()
                line = (
                    f"still waiting: {'; '.join(waiting[:3])}"
                    + (f" (+{len(waiting) - 3} more)" if len(waiting) > 3 else "")
                    + f"; {self.tally.headline()}; {self.tally.timing()}"
                )
            if waiting:
                self._err(line)


def summarize(finished: Finished, lines: Lines, redact: Callable[[str], str]) -> None:
    """The end of a run in plain lines: transactions, failures, one summary line."""
    failed = finished.failed
    for res in finished.results:
        for tx in res.tx_hashes:
            lines.out(redact(f"  {res.name}: transaction {tx}"))
    for res in failed:
        lines.err(
            redact(
                f"  {res.name}: FAILED at {res.failed}: {res.error}; skipped {len(res.skipped)} later step(s)"
            )
        )
    stopped = [res for res in finished.results if res.not_started or res.in_flight]
    for res in stopped[:_LISTED]:
        flight = f"abandoned in flight: {res.in_flight}; " if res.in_flight else ""
        lines.err(f"  {res.name}: {flight}not started: {len(res.not_started)} step(s)")
    if len(stopped) > _LISTED:
        lines.err(f"  ... and {len(stopped) - _LISTED} more account(s)")
    verb = "stopped" if stopped else "complete"
    lines.out(apply_summary_line(finished, verb))
    if failed:
        lines.err(failure_line(finished))


def done_line(event: StepDone) -> str:
    """A finished step as its Outcome says: "done: sent a deposit of 1.5 USDC (3 of 4.5
    already there)", or "nothing to do: ..." when it found the work done (issue 17)."""
    what = "done" if event.outcome.changed else "nothing to do"
    return f"{what}: {event.outcome.text}"


def apply_summary_line(finished: Finished, verb: str = "complete") -> str:
    unchanged = (
        f", {finished.steps_unchanged} found nothing to do" if finished.steps_unchanged else ""
    )
    return (
        f"Apply {verb}: {finished.steps_done} step(s) done{unchanged}, "
        f"{len(finished.failed)} account(s) failed."
    )


def failure_line(finished: Finished) -> str:
    failed = finished.failed
    names = ", ".join(res.name for res in failed)
    return (
        f"error: {len(failed)} of {len(finished.results)} account(s) failed ({names}); the others went on. "
        "Fix the cause and run apply again: it resumes where these stopped."
    )
