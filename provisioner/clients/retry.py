"""The one retry policy: capped, jittered exponential backoff, for errors that are safe to retry.

What is retried:

- an error with ``status`` 429: the server refused it unprocessed, so it is retried
  for any request, after the server's hint when it gives one;
- an error with ``status`` >= 500, a timeout or a dropped connection: only when the
  call is ``idempotent``. Such a request may have taken effect (dydx-v3-python #220:
  onboarding answered 500 and the user existed afterwards), so a write is retried only
  when its caller has made repeating it harmless;
- a connection that was never made (refused, connect timeout): always, nothing was sent.

A ``TransportError`` says which of the last two it is (``maybe_sent``). Errors name
their status through a ``status`` attribute, and may carry the server's hint as
``retry_after`` (seconds from now) or ``retry_at`` (epoch seconds); each client
converts its server's headers (v3 sends ``Retry-After`` in milliseconds).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from provisioner.clients.transport import TransportError

T = TypeVar("T")
Log = Callable[[str], None]


class Retryability(Enum):
    NEVER = "never"
    IF_IDEMPOTENT = "if idempotent"
    ALWAYS = "always"


def _no_log(_: str) -> None:
    return None


def classify(error: BaseException) -> tuple[Retryability, str]:
    """How retryable ``error`` is, and a short reason that is safe to log (no URLs, no bodies)."""
    status = getattr(error, "status", None)
    if isinstance(status, int):
        if status == 429:
            return Retryability.ALWAYS, "HTTP 429 (rate limited)"
        if status >= 500:
            return Retryability.IF_IDEMPOTENT, f"HTTP {status}"
        return Retryability.NEVER, f"HTTP {status}"
    if isinstance(error, TransportError):
        if not error.maybe_sent:
            return Retryability.ALWAYS, f"could not connect ({error.reason})"
        return Retryability.IF_IDEMPOTENT, error.reason
    if isinstance(error, TimeoutError):
        return Retryability.IF_IDEMPOTENT, f"timeout ({type(error).__name__})"
    if isinstance(error, ConnectionRefusedError):
        return Retryability.ALWAYS, f"could not connect ({type(error).__name__})"
    if isinstance(error, ConnectionError):
        return Retryability.IF_IDEMPOTENT, f"connection dropped ({type(error).__name__})"
    return Retryability.NEVER, type(error).__name__


@dataclass(frozen=True)
class RetryPolicy:
    """``call`` runs ``fn`` up to ``max_attempts`` times.

    The n-th retry waits ``min(max_delay, base_delay * 2**(n-1))``, reduced by up to the
    ``jitter`` fraction at random, unless the server named a time: that is honoured as
    given (it may exceed ``max_delay``) up to ``max_server_delay``, beyond which we stop.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    max_server_delay: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_server_delay < 0:
            raise ValueError("delays must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")

    def backoff(self, retry: int) -> float:
        """Jittered delay before the ``retry``-th retry (1-based), within ``[(1-jitter)*d, d]``."""
        capped = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return capped * (1 - self.jitter * self.random())

    def server_delay(self, error: BaseException) -> float | None:
        """Seconds the server asked us to wait, from ``retry_after`` or ``retry_at``; None if it did not say."""
        after = getattr(error, "retry_after", None)
        if isinstance(after, int | float) and after >= 0:
            return float(after)
        at = getattr(error, "retry_at", None)
        if isinstance(at, int | float):
            return max(0.0, at - self.clock())
        return None

    def call(
        self,
        fn: Callable[[], T],
        *,
        idempotent: bool,
        describe: str,
        log: Log | None = None,
    ) -> T:
        """``fn()``, retried on retryable errors; the last error is raised unchanged."""
        say = log or _no_log
        attempt = 1
        while True:
            try:
                return fn()
            except Exception as error:
                verdict, reason = classify(error)
                retryable = verdict is Retryability.ALWAYS or (
                    verdict is Retryability.IF_IDEMPOTENT and idempotent
                )
                if not retryable:
                    raise
                if attempt >= self.max_attempts:
                    say(f"{describe}: {reason}; giving up after {attempt} attempts")
                    raise
                hinted = self.server_delay(error)
                if hinted is not None and hinted > self.max_server_delay:
                    say(f"{describe}: {reason}; server asks to wait {hinted:.1f}s, not waiting")
                    raise
                delay = hinted if hinted is not None else self.backoff(attempt)
                say(
                    f"{describe}: {reason}; retry {attempt}/{self.max_attempts - 1} in {delay:.2f}s"
                )
                self.sleep(delay)
                attempt += 1
