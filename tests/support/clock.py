"""A clock for the rate limiter and the waits: it moves only when something sleeps on it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Clock:
    now: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
