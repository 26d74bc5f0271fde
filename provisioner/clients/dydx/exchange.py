"""One v3 request on the wire: through the rate limiter, the retry policy and the shared transport.

Headers are built per attempt (signatures carry a timestamp), after any wait for the
limiter; transport failures reach the retry policy as the transport raised them and
leave this module as ``DydxError``s that say whether the request may have taken effect.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioner import __version__
from provisioner.clients.dydx.errors import DydxError
from provisioner.clients.ratelimit import Bucket, RateLimiter
from provisioner.clients.retry import Retryability, RetryPolicy, classify
from provisioner.clients.transport import Response, Transport, TransportError
from provisioner.redact import Redactor

Log = Callable[[str], None]

_MAX_ERROR_TEXT = 200
_HEADERS = {
    "Accept": "application/json",
    "Content-Type": "application/json",
    "User-Agent": f"dydx-provisioner/{__version__}",
}


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # starts with /v3/, query included, exactly as signed
    route: str  # the path's template, for stats and messages: "GET /v3/accounts/:id"
    account: str | None  # whose rate-limit budget it spends; None for public endpoints
    headers: Callable[[], dict[str, str]]  # called per attempt: signatures carry a timestamp
    body: str | None = None


class Exchange:
    """Thread-safe; counts every request sent (retries included) by route."""

    def __init__(
        self,
        api_url: str,
        transport: Transport,
        *,
        redactor: Redactor,
        retry: RetryPolicy,
        limiter: RateLimiter,
        log: Log | None,
        timeout: float,
    ) -> None:
        self.api_url = api_url
        self._transport = transport
        self._redactor = redactor
        self._retry = retry
        self._limiter = limiter
        self._raw_log = log
        self._timeout = timeout
        self._stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    @property
    def stats(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self._stats)

    def log(self, message: str) -> None:
        if self._raw_log is not None:
            self._raw_log(self._redactor.redact(message))

    def call(self, request: Request, *, idempotent: bool) -> dict[str, Any]:
        result = self.with_retry(
            request.route, lambda: self.attempt(request), idempotent=idempotent
        )
        assert result is not None
        return result

    def with_retry(self, route: str, fn: Callable[[], Any], *, idempotent: bool) -> Any:
        try:
            return self._retry.call(
                fn, idempotent=idempotent, describe=f"dYdX {route}", log=self.log
            )
        except TransportError as error:
            verdict, reason = classify(error)
            raise DydxError(
                f"dYdX {route}: {reason} at {self.api_url}",
                route=route,
                ambiguous=verdict is Retryability.IF_IDEMPOTENT,
            ) from None

    def attempt(self, request: Request) -> dict[str, Any]:
        """One HTTP exchange; a ``TransportError`` propagates for the retry policy."""
        bucket = Bucket.of(request.method, request.account)
        with self._limiter.slot(bucket, log=self.log) as slot:
            headers = {**_HEADERS, **request.headers()}  # after any wait: timestamps must be fresh
            slot.sending()  # signing may have taken long (remote signers): count from now
            with self._stats_lock:
                self._stats[request.route] += 1
            response = self._transport.request(
                request.method,
                self.api_url + request.path,
                body=request.body,
                headers=headers,
                timeout=self._timeout,
            )
            slot.observe(response.headers)
        if not 200 <= response.status_code < 300:
            raise self._http_error(request.route, response)
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            raise self.unexpected(request.route) from None
        if not isinstance(data, dict):
            raise self.unexpected(request.route)
        return data

    def unexpected(self, route: str) -> DydxError:
        return DydxError(f"dYdX {route}: unexpected answer", route=route)

    def _http_error(self, route: str, response: Response) -> DydxError:
        status = response.status_code
        msg = _error_message(response)
        text = self._redactor.redact(f"dYdX {route}: {status} {msg}".rstrip())
        retry_after = _int(response.headers.get("Retry-After"))
        reset = _int(response.headers.get("RateLimit-Reset")) if status == 429 else None
        return DydxError(
            text,
            status=status,
            msg=self._redactor.redact(msg),
            route=route,
            retry_after=None if retry_after is None else retry_after / 1000,
            retry_at=None if reset is None else reset / 1000,
            ambiguous=status >= 500,
        )


def _error_message(response: Response) -> str:
    """v3's ``errors[].msg``; otherwise a short, single-line piece of the body (Cloudflare answers HTML)."""
    try:
        errors = response.json().get("errors")
        messages = [str(e["msg"]) for e in errors if isinstance(e, dict) and "msg" in e]
        if messages:
            return "; ".join(messages)[:_MAX_ERROR_TEXT]
    except (ValueError, AttributeError, TypeError):
        pass
    text = " ".join(response.text.split())
    return text[:_MAX_ERROR_TEXT] or (response.reason or "")


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
