"""The rate-limit floor the apply benchmark compares with (benchmarks/ratelimit_floor.py)."""

from __future__ import annotations

from benchmarks.ratelimit_floor import floor_from_counts


def test_the_floor_of_100_fresh_accounts_with_eleven_keys_each() -> None:
    counts = {
        "GET /v3/users/exists": 400,  # 4 per account: one shared public budget
        "POST /v3/onboarding": 100,
        "POST /v3/api-keys": 1000,  # 10 named keys each: 11 writes per account
        "GET /v3/api-keys": 1000,
        "GET /v3/registration": 100,
        "GET /v3/accounts/{id}": 100,
    }
    floor = floor_from_counts(counts, 100)
    assert floor.public_reads == 400 and floor.public_seconds == 20  # 175 + 175 + 50
    assert floor.writes_per_account == 11 and floor.writes_seconds == 60  # the 11th waits 60 s
    assert floor.private_reads_per_account == 12 and floor.private_reads_seconds == 0
    assert floor.seconds == 80
    assert floor.explain()[-1] == "floor = 20 + max(60, 0) = 80 s"


def test_no_floor_when_every_budget_suffices() -> None:
    floor = floor_from_counts({"GET /v3/users/exists": 175, "POST /v3/onboarding": 10}, 1)
    assert floor.public_seconds == 0 and floor.writes_seconds == 0 and floor.seconds == 0
    assert floor_from_counts({"POST /v3/onboarding": 11}, 1).seconds == 60
    assert floor_from_counts({"GET /v3/time": 176}, 1).seconds == 10
