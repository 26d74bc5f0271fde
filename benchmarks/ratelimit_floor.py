"""The shortest time v3's rate limits allow for the requests an apply made.

v3 counted, per client IP for public routes and per IP and account for private ones:
GET 175 per 10 s, every other method 10 per 60 s (fixed windows). Given how many
requests of each kind an apply of N identical accounts made (the emulator's counts), and
that apply asks whether a user exists (public) before that account's first write:

- public reads share one budget: the last of R goes out at floor((R - 1) / 175) * 10 s
  at the earliest, and the account it belongs to has all its writes still to make;
- an account's w writes take floor((w - 1) / 10) * 60 s from its first; likewise its
  private reads, floor((g - 1) / 175) * 10 s;

so no client can finish before public + max(writes, private reads). Everything else
(signing, Vault, the chain) counts as free here: the floor is the limits' alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

READ_LIMIT, READ_WINDOW = 175, 10.0
WRITE_LIMIT, WRITE_WINDOW = 10, 60.0
PUBLIC_ROUTES = frozenset({"GET /v3/users/exists", "GET /v3/time"})


@dataclass(frozen=True)
class Floor:
    accounts: int
    public_reads: int
    writes_per_account: float
    private_reads_per_account: float

    @property
    def public_seconds(self) -> float:
        return _spread(self.public_reads, READ_LIMIT, READ_WINDOW)

    @property
    def writes_seconds(self) -> float:
        return _spread(self.writes_per_account, WRITE_LIMIT, WRITE_WINDOW)

    @property
    def private_reads_seconds(self) -> float:
        return _spread(self.private_reads_per_account, READ_LIMIT, READ_WINDOW)

    @property
    def seconds(self) -> float:
        return self.public_seconds + max(self.writes_seconds, self.private_reads_seconds)

    def explain(self) -> list[str]:
        return [
            f"public reads: {self.public_reads} in all at {READ_LIMIT}/{READ_WINDOW:g} s per IP"
            f" -> the last at >= {self.public_seconds:g} s",
            f"writes: {self.writes_per_account:g} per account at {WRITE_LIMIT}/{WRITE_WINDOW:g} s"
            f" per account -> >= {self.writes_seconds:g} s from each account's first",
            f"private reads: {self.private_reads_per_account:g} per account at"
            f" {READ_LIMIT}/{READ_WINDOW:g} s per account -> >= {self.private_reads_seconds:g} s",
            f"floor = {self.public_seconds:g} + max({self.writes_seconds:g},"
            f" {self.private_reads_seconds:g}) = {self.seconds:g} s",
        ]


def floor_from_counts(requests: Mapping[str, int], accounts: int) -> Floor:
    """``requests``: the emulator's count per "METHOD /v3/route" for the run; the accounts are
    alike, so the busiest account is taken as the average, rounded up."""
    public = sum(n for route, n in requests.items() if route in PUBLIC_ROUTES)
    writes = sum(n for route, n in requests.items() if not route.startswith("GET "))
    private = sum(
        n
        for route, n in requests.items()
        if route.startswith("GET ") and route not in PUBLIC_ROUTES
    )
    return Floor(
        accounts=accounts,
        public_reads=public,
        writes_per_account=-(-writes // accounts),
        private_reads_per_account=-(-private // accounts),
    )


def _spread(count: float, limit: int, window: float) -> float:
    """When the last of ``count`` requests may go, the first at 0, ``limit`` per fixed window."""
    return 0.0 if count <= 0 else ((int(count) - 1) // limit) * window
