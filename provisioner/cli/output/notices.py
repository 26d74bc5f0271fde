"""The run's notices (leases, busy accounts, nothing to apply, cancelled), worded once for
every reporter: the plain and live ones print ``line``, the JSON one emits ``message``."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.apply.events import (
    AccountBusy,
    Cancelled,
    Event,
    LeaseTakenOver,
    LeaseTrouble,
    LeaseWaiting,
    NothingToApply,
)


@dataclass(frozen=True)
class Notice:
    line: str  # as a line of text output, indented like the step lines it stands among
    message: str  # without indentation or prefix, as the JSON stream carries it
    level: str  # "info" or "warn"
    account: str | None = None
    result: bool = False  # the run's result (stdout), not its progress (stderr)

    @property
    def style(self) -> str:
        return "yellow" if self.level == "warn" else "dim"


def notice(event: Event) -> Notice | None:
    if isinstance(event, NothingToApply):
        return Notice("Nothing to apply.", "Nothing to apply.", "info", result=True)
    if isinstance(event, Cancelled):
        return Notice("Apply cancelled.", "Apply cancelled.", "warn", result=True)
    if isinstance(event, AccountBusy):
        text = f"{event.account}: {event.message}"
        return Notice(f"  {text}", text, "warn", account=event.account)
    if isinstance(event, LeaseTakenOver):
        text = event.takeover.describe()
        return Notice(f"  {text}", text, "warn")
    if isinstance(event, LeaseWaiting):
        return Notice(f"  {event.message}", event.message, "info")
    if isinstance(event, LeaseTrouble):
        return Notice(f"warning: {event.message}", event.message, "warn")
    return None
