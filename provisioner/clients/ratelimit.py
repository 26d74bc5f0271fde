"""Client-side rate limiting that waits instead of letting dYdX v3 answer 429.

v3 counted one point per request: ``GET`` 175 per 10 s, every other method 10 per
60 s, per account for private endpoints and per client for public ones, in fixed
windows. Each bucket follows the server's own count from ``RateLimit-Limit`` /
``RateLimit-Remaining`` / ``RateLimit-Reset`` (epoch ms), so that requests made by
others with the same account are accounted for too, and once a window it told us
about is over, spends the next one's whole budget at once. Before the first answer it
keeps a sliding log of what we sent (never more than the limit in any window).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from provisioner.waits import Wait, WaitHook

Mode = Literal["strict", "relaxed"]
Log = Callable[[str], None]

PUBLIC = "public"
_LOG_WAITS_FROM = 0.5  # seconds; shorter waits are not worth a log line


@dataclass(frozen=True)
class Limit:
    requests: int
    window: float  # seconds


@dataclass(frozen=True)
class RateLimits:
    read: Limit
    write: Limit

    @classmethod
    def v3(cls) -> RateLimits:
        return cls(read=Limit(175, 10.0), write=Limit(10, 60.0))

    @classmethod
    def relaxed(cls) -> RateLimits:
        """For the sandbox's relaxed mode: the same shape, limits nobody reaches."""
        return cls(read=Limit(1_000_000, 10.0), write=Limit(1_000_000, 60.0))


@dataclass(frozen=True)
class Bucket:
    """What the server counts a request against: an account (or the public client) and GET vs the rest."""

    scope: str
    kind: Literal["read", "write"]

    @classmethod
    def of(cls, method: str, account: str | None) -> Bucket:
        """``account``: the Ethereum address a private request authenticates as; None for public endpoints."""
        kind: Literal["read", "write"] = "read" if method.upper() == "GET" else "write"
        return cls(scope=account.lower() if account else PUBLIC, kind=kind)

    def __str__(self) -> str:
        return f"{self.kind}s of {self.scope}"


@dataclass(slots=True)
class _State:
    """One bucket's count. A plan keeps two an account, so it is small: slots, and the log a
    list (an empty deque is 760 bytes, 15 MB over 10,000 accounts' buckets)."""

    limit: int
    window: float
    sent: list[float] = field(default_factory=list)  # in order, oldest first
    in_flight: int = 0
    server_remaining: int | None = None
    server_reset: float | None = None  # epoch seconds
    boundary: float | None = None  # end of the last server window seen to pass (epoch seconds)


class Slot:
    """One request's permission to go out; report the response headers through ``observe``."""

    def __init__(self, limiter: RateLimiter, bucket: Bucket, taken_at: float) -> None:
        self._limiter = limiter
        self.bucket = bucket
        self._taken_at = taken_at
        self._observed = False

    def sending(self) -> None:
        """Count the request from now rather than from when the slot was taken (slow signers)."""
        self._taken_at = self._limiter._restamp(self.bucket, self._taken_at)

    def observe(self, headers: Mapping[str, str]) -> None:
        if not self._observed:
            self._observed = True
            self._limiter._observe(self.bucket, headers)


class RateLimiter:
    """Thread-safe; ``slot`` blocks (through the injected ``sleep``) until the request may go."""

    def __init__(
        self,
        limits: RateLimits | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = 0.25,
        on_wait: WaitHook | None = None,
    ) -> None:
        self._limits = limits or RateLimits.v3()
        self._on_wait = on_wait  # told of every wait worth a log line, before it starts
        self._clock = clock
        self._sleep = sleep
        self._margin = margin  # seconds added to every window end, for latency and clock skew
        self._lock = threading.Lock()
        self._states: dict[Bucket, _State] = {}

    @classmethod
    def for_mode(
        cls,
        mode: Mode,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RateLimiter:
        limits = RateLimits.v3() if mode == "strict" else RateLimits.relaxed()
        return cls(limits, clock=clock, sleep=sleep)

    @contextmanager
    def slot(self, bucket: Bucket, *, log: Log | None = None) -> Iterator[Slot]:
        taken_at = self._acquire(bucket, log)
        try:
            yield Slot(self, bucket, taken_at)
        finally:
            with self._lock:
                self._states[bucket].in_flight -= 1

    def _state(self, bucket: Bucket) -> _State:
        state = self._states.get(bucket)
        if state is None:
            limit = self._limits.read if bucket.kind == "read" else self._limits.write
            state = self._states[bucket] = _State(limit=limit.requests, window=limit.window)
        return state

    def _acquire(self, bucket: Bucket, log: Log | None) -> float:
        logged = False
        told_until = 0.0  # the end of the last wait announced: a longer one is told again
        while True:
            with self._lock:
                state = self._state(bucket)
                now = self._clock()
                wait = self._wait_needed(state, now)
                if wait <= 0:
                    state.sent.append(now)
                    state.in_flight += 1
                    if state.server_remaining is not None:
                        state.server_remaining -= 1
                    return now
            if wait >= _LOG_WAITS_FROM:
                if log is not None and not logged:
                    log(f"rate limit: waiting {wait:.1f}s for the {bucket} budget")
                    logged = True
                until = now + wait
                if self._on_wait is not None and until > told_until + _LOG_WAITS_FROM:
                    self._on_wait(Wait(f"dYdX {bucket.kind} window", until, subject=bucket.scope))
                    told_until = until
            self._sleep(wait)

    def _restamp(self, bucket: Bucket, taken_at: float) -> float:
        with self._lock:
            state = self._state(bucket)
            now = self._clock()
            if taken_at in state.sent:
                state.sent.remove(taken_at)
            state.sent.append(now)  # still in order: every other entry is at most now
            return now

    def _wait_needed(self, state: _State, now: float) -> float:
        horizon = state.window + self._margin
        expired = bisect.bisect_right(state.sent, now - horizon)
        if expired:
            del state.sent[:expired]
        if state.server_reset is not None and now >= state.server_reset + self._margin:
            state.boundary = state.server_reset  # that window is over
            state.server_reset = state.server_remaining = None
        if state.server_reset is not None and state.server_remaining is not None:
            # Inside a window the server told us about: its count governs (it includes what
            # others sent with the same account or address).
            return 0.0 if state.server_remaining > 0 else state.server_reset + self._margin - now
        if state.boundary is not None:
            # v3's windows are fixed: once one is over, the next opens with our next request and
            # holds the whole limit, however many we sent just before (a sliding log would make
            # those trickle out for another window's length).
            fresh = [t for t in state.sent if t >= state.boundary]
            return 0.0 if len(fresh) < state.limit else fresh[0] + horizon - now
        # No window from the server yet: a sliding log, never more than the limit in any window.
        excess = len(state.sent) - state.limit
        return state.sent[excess] + horizon - now if excess >= 0 else 0.0

    def _observe(self, bucket: Bucket, headers: Mapping[str, str]) -> None:
        h = {k.lower(): v for k, v in headers.items()}
        limit = _int(h.get("ratelimit-limit"))
        remaining = _int(h.get("ratelimit-remaining"))
        reset_ms = _int(h.get("ratelimit-reset"))
        retry_after_ms = _int(h.get("retry-after"))
        with self._lock:
            state = self._state(bucket)
            if limit is not None and limit > 0:
                state.limit = limit
            if remaining is not None and reset_ms is not None:
                reset = reset_ms / 1000
                # others still in flight may or may not be counted in this answer: assume they are not
                estimate = remaining - (state.in_flight - 1)
                if state.server_reset is None or reset > state.server_reset + self._margin:
                    state.server_reset, state.server_remaining = reset, estimate
                elif reset >= state.server_reset - self._margin:
                    current = state.server_remaining
                    state.server_remaining = estimate if current is None else min(current, estimate)
            if retry_after_ms is not None:
                until = self._clock() + retry_after_ms / 1000
                state.server_remaining = 0
                state.server_reset = max(state.server_reset or until, until)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
