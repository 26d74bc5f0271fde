"""A run waiting on something outside it: a rate-limit window, a receipt. Told, never printed.

The clients that wait call a ``WaitHook`` the run gives them when they are opened, so that
whoever watches the run (a live display, a CI log, a JSON stream) can say what it waits for
and until when instead of looking hung.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Wait:
    """``what``: a phrase ("dYdX write window"); ``account``: whose, when the waiter knows it;
    ``until``: when the wait ends (epoch seconds), or at the latest when ``at_most`` (a
    receipt comes when its block does; ``until`` is when the run gives up on it). A waiter
    that tells when a wait ends early tells again with an ``until`` already passed."""

    what: str
    until: float
    account: str | None = None
    subject: str = ""  # the address or transaction the wait is about, for those that map it
    at_most: bool = False

    def describe(self, now: float) -> str:
        """ "dYdX write window for mm-beta: 41 s"."""
        whose = f" for {self.account}" if self.account else ""
        return f"{self.what}{whose}: {self.left(now)}"

    def left(self, now: float) -> str:
        seconds = f"{max(0.0, self.until - now):.0f} s"
        return f"up to {seconds}" if self.at_most else seconds


WaitHook = Callable[[Wait], None]


def no_wait_hook(_wait: Wait) -> None:
    """For callers that do not watch waits."""
