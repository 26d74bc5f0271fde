"""v3's rate limits: fixed windows of points, one point per request.

GET: 175 per 10 s; every other request (onboarding, API-key POST/DELETE): 10 per
minute. Public routes are keyed by client IP; private ones by IP and the caller's
address. Every limited response carries ``RateLimit-Remaining``, ``RateLimit-Limit``
and ``RateLimit-Reset`` (window end, epoch ms); a 429 adds ``Retry-After`` (ms until
that end, as v3 documented it, not seconds). Relaxed mode keeps the headers but
allows a billion points per window, for fast tests and benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    points: int
    window_ms: int


GET_LIMIT = Limit(175, 10_000)
WRITE_LIMIT = Limit(10, 60_000)
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

    def hit(self, key: tuple[str, ...], limit: Limit, now_ms: int) -> Decision:
        points = limit.points if self.strict else RELAXED_POINTS
        window = self._windows.get(key)
        if window is None or window[0] <= now_ms:
            if len(self._windows) >= _PRUNE_AT:
                self._prune(now_ms)
            window = [now_ms + limit.window_ms, 0]
            self._windows[key] = window
        end, used = window
        if used >= points:
            return Decision(False, points, 0, end, end - now_ms)
        window[1] = used + 1
        return Decision(True, points, points - used - 1, end, 0)

    def _prune(self, now_ms: int) -> None:
        for key in [k for k, (end, _) in self._windows.items() if end <= now_ms]:
            del self._windows[key]

    def clear(self) -> None:
        self._windows.clear()
