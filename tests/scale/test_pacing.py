"""The client's limiter against the emulator's own fixed windows: never a 429, and no slower than
the windows allow (a sliding log alone would make each window's budget trickle out)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from support.clock import Clock

from provisioner.clients.ratelimit import Bucket, RateLimiter, RateLimits
from provisioner.sandbox.emulator.rate_limit import GET_LIMIT, WRITE_LIMIT
from provisioner.sandbox.emulator.rate_limit import RateLimiter as ServerLimits

ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
MARGIN = 0.25


@dataclass
class Server:
    """v3's limits as the emulator enforces them, answering with its headers."""

    clock: Clock
    limits: ServerLimits = field(default_factory=lambda: ServerLimits(strict=True))
    rejected: int = 0
    sent_at: list[float] = field(default_factory=list)

    def send(self, client: RateLimiter, method: str, account: str | None) -> None:
        with client.slot(Bucket.of(method, account)) as slot:
            limit = GET_LIMIT if method == "GET" else WRITE_LIMIT
            decision = self.limits.hit((method, account or "ip"), limit, int(self.clock.now * 1000))
            self.rejected += not decision.allowed
            self.sent_at.append(self.clock.now)
            slot.observe(decision.headers())


def client(clock: Clock) -> RateLimiter:
    return RateLimiter(RateLimits.v3(), clock=clock, sleep=clock.sleep, margin=MARGIN)


def test_public_reads_spend_each_fixed_window_at_once_and_are_never_refused() -> None:
    clock = Clock()
    server, limiter = Server(clock), client(clock)
    start = clock.now
    for i in range(400):
        server.send(limiter, "GET", None)
        if i < 175:
            clock.now += 0.04  # the first window's reads spread over 7 s, as a run's are
    assert server.rejected == 0
    # window 1: [0, 10) s, window 2 opens at 10.25 with 175 at once, window 3 at 20.5
    assert server.sent_at[-1] - start == pytest.approx(2 * (10 + MARGIN), abs=0.01)


def test_an_accounts_writes_wait_a_window_then_go_at_once() -> None:
    clock = Clock()
    server, limiter = Server(clock), client(clock)
    start = clock.now
    for _ in range(25):
        server.send(limiter, "POST", ALICE)
        clock.now += 1.0  # each write takes a second (signing, Vault)
    assert server.rejected == 0
    # 10 in the first minute, 10 from 60.25 s, the rest from ~120.5 s
    assert server.sent_at[10] - start == pytest.approx(60 + MARGIN, abs=0.01)
    assert server.sent_at[20] - start == pytest.approx(120 + 2 * MARGIN, abs=1.01)


def test_others_spending_the_same_budget_are_followed_from_the_headers() -> None:
    clock = Clock()
    server, limiter = Server(clock), client(clock)
    for _ in range(170):  # another process with the same address, same window
        server.limits.hit(("GET", ALICE), GET_LIMIT, int(clock.now * 1000))
    for _ in range(10):
        server.send(limiter, "GET", ALICE)
    assert server.rejected == 0
    assert clock.sleeps and clock.sleeps[0] == pytest.approx(10 + MARGIN, abs=0.01)


@pytest.mark.parametrize("accounts", [1, 7])
def test_interleaved_accounts_under_real_limits_draw_no_429(accounts: int) -> None:
    clock = Clock()
    server, limiter = Server(clock), client(clock)
    names = [f"0x{i:040x}" for i in range(accounts)]
    for round_ in range(30):
        for name in names:
            server.send(limiter, "GET", None)
            server.send(limiter, "POST", name)
            server.send(limiter, "GET", name)
        clock.now += 0.3 * (round_ % 3)
    assert server.rejected == 0
