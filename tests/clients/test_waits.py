"""Clients tell the run when they wait (a rate-limit window, a receipt): a callback given when
they are opened, with what, until when and whose; never a log line the display must parse."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from support.clock import Clock

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)
from provisioner.clients.ratelimit import Bucket, Limit, RateLimiter, RateLimits
from provisioner.connections import _with_account_names
from provisioner.waits import Wait

ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@dataclass
class FakeManifest:
    accounts: list[object]


@dataclass
class FakeAccount:
    name: str
    address: str


def test_a_write_window_wait_is_told_with_its_end_and_account() -> None:
    clock = Clock()
    waits: list[Wait] = []
    named = _with_account_names(FakeManifest([FakeAccount("mm-beta", ADDRESS)]), waits.append)  # type: ignore[arg-type]
    limiter = RateLimiter(
        RateLimits(read=Limit(175, 10.0), write=Limit(2, 60.0)),
        clock=clock,
        sleep=clock.sleep,
        on_wait=named,
    )
    bucket = Bucket.of("POST", ADDRESS)
    for _ in range(3):
        with limiter.slot(bucket):
            pass
    assert len(waits) == 1
    wait = waits[0]
    assert wait.account == "mm-beta" and wait.what == "dYdX write window"
    assert wait.until == pytest.approx(1_700_000_000.0 + 60.25)
    assert wait.describe(1_700_000_000.0 + 19.25) == "dYdX write window for mm-beta: 41 s"
    assert clock.sleeps == [pytest.approx(60.25)]
