"""Counts of the requests the emulator received, for tests that assert a client stayed quiet."""

from __future__ import annotations

from collections import Counter


class RequestStats:
    def __init__(self) -> None:
        self._by_route: Counter[str] = Counter()
        self.writes = 0
        self.total = 0

    def record(self, method: str, route: str) -> None:
        self._by_route[f"{method} {route}"] += 1
        self.total += 1
        if method not in ("GET", "HEAD", "OPTIONS"):
            self.writes += 1

    def snapshot(self) -> dict[str, object]:
        return {
            "requests": dict(sorted(self._by_route.items())),
            "writes": self.writes,
            "total": self.total,
        }

    def clear(self) -> None:
        self._by_route.clear()
        self.writes = 0
        self.total = 0
