"""The floor the realistic apply benchmark compares with (benchmarks/realistic_floor.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks.ratelimit_floor import floor_from_counts
from benchmarks.realistic_floor import ApplyFloor, Latencies, periodic_blocks

WAN = Latencies(dydx=0.050, vault=0.005, rpc=0.020)
# 50 fresh accounts, the default key and two named ones: nothing waits for v3's budgets
COUNTS = {
    "GET /v3/users/exists": 50,
    "POST /v3/onboarding": 50,
    "POST /v3/api-keys": 100,
    "GET /v3/registration": 50,
    "GET /v3/api-keys": 100,
}


def _floor(blocks_at: tuple[float, ...], **kw: object) -> ApplyFloor:
    return ApplyFloor(WAN, floor_from_counts(COUNTS, 50), blocks_at, **kw)  # type: ignore[arg-type]


def test_the_sequential_round_trips_then_the_first_block_after_the_sends() -> None:
    floor = _floor((0.1, 2.1, 4.1, 6.1))
    assert floor.limits.seconds == 0
    # look 50, two locks 5 + 5, look again 20, STARK key 5 + 5, onboarding 50
    assert floor.onboarded_at == pytest.approx(0.140)
    # registration 50, simulate 20, journal 5, send 20, simulate deposit 20, journal 5, send 20
    assert floor.sent_at == pytest.approx(0.280)
    assert floor.mined_at == 2.1  # the block at 0.1 s came before anything could be sent
    assert floor.chain_seconds == pytest.approx(2.1 + 0.020 + 0.005 + 0.010)
    assert floor.api_keys_seconds == pytest.approx(0.140 + 0.050 + 0.010 + 0.010)
    assert floor.seconds == floor.chain_seconds
    assert floor.explain()[-1] == "floor = max(2.135, 0.210) = 2.135 s"


def test_a_block_mined_right_at_the_send_takes_the_transactions() -> None:
    assert _floor((0.280, 2.280)).mined_at == 0.280


def test_blocks_not_transactions_and_confirmations_count_when_awaited() -> None:
    blocks = periodic_blocks(1.0, 2.0)
    assert blocks[:3] == (1.0, 3.0, 5.0)
    assert _floor(blocks).mined_at == 1.0
    assert _floor(blocks, blocks=3).mined_at == 5.0  # one block per transaction, in turn
    assert _floor(blocks, confirmations=2).mined_at == 5.0
    with pytest.raises(ValueError, match="no block observed"):
        _floor((1.0, 3.0), blocks=3).mined_at  # noqa: B018


def test_at_twelve_second_blocks_the_wait_for_the_block_is_most_of_the_floor() -> None:
    two = _floor(periodic_blocks(0.01, 2.0))
    twelve = replace(two, blocks_at=periodic_blocks(0.01, 12.0))
    assert two.seconds == pytest.approx(2.01 + 0.035)
    assert twelve.seconds == pytest.approx(12.01 + 0.035)


def test_rate_limit_waits_hold_up_the_api_keys_branch() -> None:
    counts = {**COUNTS, "POST /v3/api-keys": 50 * 10}  # 11 writes each: the 11th waits 60 s
    floor = ApplyFloor(WAN, floor_from_counts(counts, 50), periodic_blocks(0.5, 2.0))
    assert floor.limits.writes_seconds == 60
    # onboarding went at 0.090 s (answered at 0.140); the last key 60 s after, then stored
    assert floor.api_keys_seconds == pytest.approx(0.090 + 60 + 0.050 + 0.010 + 0.010)
    assert floor.seconds == floor.api_keys_seconds


def test_public_reads_past_one_window_delay_the_last_account_from_its_first_look() -> None:
    counts = {**COUNTS, "GET /v3/users/exists": 200}  # the 176th waits for the next 10 s
    floor = _floor(periodic_blocks(0.5, 2.0))
    held = replace(floor, limits=floor_from_counts(counts, 50))
    assert held.onboarded_at == pytest.approx(10 + floor.onboarded_at)
    assert held.mined_at == pytest.approx(10.5)
