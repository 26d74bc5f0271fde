"""v3's rate limits: 10 writes a minute per IP and user, 175 GETs per 10 s, orders apart; v3's headers."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import time
from typing import Any

import pytest
import requests
from dydx3.errors import DydxApiError
from support.emulator import (
    EmulatorProcess,
    api_key_headers,
    compact,
    first_msg,
    fresh_wallet,
    now_iso,
    onboard,
)

from provisioner.sandbox.emulator import errors

pytestmark = pytest.mark.sandbox


@pytest.fixture
def strict(start_emulator: Any) -> EmulatorProcess:
    process: EmulatorProcess = start_emulator("--rate-limits", "strict", name="strict")
    return process


def test_the_eleventh_write_in_a_minute_gets_429_with_headers(strict: EmulatorProcess) -> None:
    wallet = fresh_wallet(strict.rpc_url)
    client, _ = onboard(strict, wallet)  # write 1 (onboarding counts as a write)
    remaining = []
    for _ in range(9):  # writes 2..10
        response = client.eth_private.create_api_key()
        remaining.append(int(response.headers["RateLimit-Remaining"]))
        assert response.headers["RateLimit-Limit"] == "10"
    assert remaining == list(range(8, -1, -1))

    started_ms = time.time() * 1000
    with pytest.raises(DydxApiError) as caught:
        client.eth_private.create_api_key()  # write 11
    rejected = caught.value.response
    assert rejected.status_code == 429
    assert rejected.json() == {"errors": [{"msg": errors.RATE_LIMITED}]}
    assert rejected.headers["RateLimit-Remaining"] == "0"
    assert rejected.headers["RateLimit-Limit"] == "10"
    reset_ms, retry_after_ms = (
        int(rejected.headers["RateLimit-Reset"]),
        int(rejected.headers["Retry-After"]),
    )
    assert started_ms - 5_000 < reset_ms <= started_ms + 60_000
    assert 0 < retry_after_ms <= 60_000  # milliseconds, as v3 documented, not seconds
    assert len(client.private.get_api_keys().data["apiKeys"]) == 10  # the refused write did nothing

    # private limits are per IP *and* user: another user still has a full budget
    other, _ = onboard(strict, fresh_wallet(strict.rpc_url))
    assert other.eth_private.create_api_key().headers["RateLimit-Remaining"] == "8"


def test_the_176th_get_in_ten_seconds_gets_429(strict: EmulatorProcess) -> None:
    session = requests.Session()
    first = session.get(f"{strict.url}/v3/time", timeout=5)
    assert first.headers["RateLimit-Limit"] == "175"
    left = int(first.headers["RateLimit-Remaining"])  # the readiness probe used a point or more
    for _ in range(left):
        assert session.get(f"{strict.url}/v3/time", timeout=5).status_code == 200
    limited = session.get(f"{strict.url}/v3/time", timeout=5)
    assert limited.status_code == 429 and first_msg(limited) == errors.RATE_LIMITED
    assert 0 < int(limited.headers["Retry-After"]) <= 10_000


def test_relaxed_limits_still_send_the_headers(emulator: EmulatorProcess) -> None:
    response = requests.get(f"{emulator.url}/v3/time", timeout=5)
    assert int(response.headers["RateLimit-Limit"]) >= 1_000_000
    assert int(response.headers["RateLimit-Remaining"]) > 0
    assert int(response.headers["RateLimit-Reset"]) > time.time() * 1000


def _order_body(market: str, size: str, price: str) -> str:
    return compact(
        {
            "market": market,
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTT",
            "postOnly": True,
            "size": size,
            "price": price,
            "limitFee": "0.0015",
            "expiration": now_iso(3600),
            "clientId": str(time.monotonic_ns()),
            "signature": "0" * 128,  # counted before it is checked: a refused order still costs
        }
    )


def test_orders_have_their_own_notional_weighted_limits(strict: EmulatorProcess) -> None:
    client, data = onboard(strict, fresh_wallet(strict.rpc_url))
    creds = data["apiKey"]

    def place(market: str, size: str, price: str) -> requests.Response:
        body = _order_body(market, size, price)
        headers = api_key_headers(creds, "POST", "/v3/orders", body)
        return requests.post(f"{strict.url}/v3/orders", data=body, headers=headers, timeout=5)

    # a 1 USDC order costs the maximum 100 points of the market's 1,750 per 10 s
    for n in range(17):
        answer = place("BTC-USD", "0.001", "1000")
        assert answer.status_code == 400 and first_msg(answer) == errors.INVALID_ORDER_SIGNATURE
        assert answer.headers["RateLimit-Limit"] == "1750"
        assert answer.headers["RateLimit-Remaining"] == str(1750 - 100 * (n + 1))
    limited = place("BTC-USD", "0.001", "1000")
    assert limited.status_code == 429 and first_msg(limited) == errors.RATE_LIMITED
    # a 40,000 USDC order costs the limit-order minimum, 4 points: 50 are still there
    assert place("BTC-USD", "2", "20000").headers["RateLimit-Remaining"] == "46"
    # per market, and apart from the 10-a-minute budget of other writes
    assert place("ETH-USD", "0.01", "1000").headers["RateLimit-Remaining"] == "1650"
    assert client.eth_private.create_api_key().headers["RateLimit-Remaining"] == "8"

    for left in ("2", "1", "0"):
        path = "/v3/orders"
        headers = api_key_headers(creds, "DELETE", path)
        answer = requests.delete(f"{strict.url}{path}", headers=headers, timeout=5)
        assert answer.status_code == 200 and answer.headers["RateLimit-Remaining"] == left
    headers = api_key_headers(creds, "DELETE", "/v3/orders")
    assert requests.delete(f"{strict.url}/v3/orders", headers=headers, timeout=5).status_code == 429
