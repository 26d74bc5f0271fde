"""v3's rate limits: fixed windows of points.

GET: 175 per 10 s; every other request (onboarding, API keys, accounts, users,
withdrawals): 10 per minute, one point each. Orders have their own (v3's
``GET /v3/config``): ``POST /v3/orders`` 1,750 points per 10 s per market, an
order costing ``clamp(ceil(40000 / (size * price)), minimum, 100)`` points with a
minimum of 4 for a resting limit order, 20 for IOC/FOK and market orders and 100
for triggerable ones (so small orders cost more); ``DELETE /v3/orders/:id`` 250 per
10 s per market; ``DELETE /v3/orders`` 3 per 10 s. Public routes are keyed by client
IP; private ones by IP and the caller's address. Every limited response carries ``RateLimit-Remaining``, ``RateLimit-Limit``
and ``RateLimit-Reset`` (window end, epoch ms); a 429 adds ``Retry-After`` (ms until
that end, as v3 documented it, not seconds). Relaxed mode keeps the headers but
allows a billion points per window, for fast tests and benchmarks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True)
class Limit:
    points: int
    window_ms: int


GET_LIMIT = Limit(175, 10_000)
WRITE_LIMIT = Limit(10, 60_000)
PLACE_ORDER_LIMIT = Limit(1750, 10_000)
CANCEL_ORDER_LIMIT = Limit(250, 10_000)
CANCEL_ALL_ORDERS_LIMIT = Limit(3, 10_000)
ORDER_TARGET_NOTIONAL = Decimal(40_000)
MIN_LIMIT_CONSUMPTION = 4
MIN_MARKET_CONSUMPTION = 20
MIN_TRIGGERABLE_CONSUMPTION = 100
MAX_ORDER_CONSUMPTION = 100
TRIGGERABLE_TYPES = ("STOP_LIMIT", "TAKE_PROFIT", "TRAILING_STOP")


@dataclass(frozen=True)
class Charge:
    """What one request costs: ``points`` from the window ``bucket`` (a name, e.g. a market's)."""

    bucket: str
    limit: Limit
    points: int = 1


def order_cost(body: Any) -> int:
    """Points one ``POST /v3/orders`` costs; the maximum for a body it cannot price."""
    if not isinstance(body, dict):
        return MAX_ORDER_CONSUMPTION
    if body.get("type") in TRIGGERABLE_TYPES:
        minimum = MIN_TRIGGERABLE_CONSUMPTION
    elif body.get("type") == "MARKET" or body.get("timeInForce") in ("IOC", "FOK"):
        minimum = MIN_MARKET_CONSUMPTION
    else:
        minimum = MIN_LIMIT_CONSUMPTION
    try:
        notional = Decimal(str(body.get("size"))) * Decimal(str(body.get("price")))
    except (InvalidOperation, ValueError):
        return MAX_ORDER_CONSUMPTION
    if not notional.is_finite() or notional <= 0:
        return MAX_ORDER_CONSUMPTION
    return max(minimum, min(MAX_ORDER_CONSUMPTION, math.ceil(ORDER_TARGET_NOTIONAL / notional)))


RELAXED_POINTS = 1_000_000_000
_PRUNE_AT = 10_000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_ms: int
    retry_after_ms: int

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Reset": str(self.reset_ms),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_ms)
        return out


def limit_for(method: str) -> Limit:
    return GET_LIMIT if method == "GET" else WRITE_LIMIT


class RateLimiter:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self._windows: dict[tuple[str, ...], list[int]] = {}  # key -> [window end ms, points used]

    def hit(self, key: tuple[str, ...], limit: Limit, now_ms: int, cost: int = 1) -> Decision:
        points = limit.points if self.strict else RELAXED_POINTS
        window = self._windows.get(key)
        if window is None or window[0] <= now_ms:
            if len(self._windows) >= _PRUNE_AT:
                self._prune(now_ms)
            window = [now_ms + limit.window_ms, 0]
            self._windows[key] = window
        end, used = window
        if used + cost > points:
            return Decision(False, points, points - used, end, end - now_ms)
        window[1] = used + cost
        return Decision(True, points, points - used - cost, end, 0)

    def _prune(self, now_ms: int) -> None:
        for key in [k for k, (end, _) in self._windows.items() if end <= now_ms]:
            del self._windows[key]

    def clear(self) -> None:
        self._windows.clear()
