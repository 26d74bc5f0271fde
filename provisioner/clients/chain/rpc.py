"""JSON-RPC over the shared transport: single calls and batches, transport failures retried."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.clients.chain.errors import ChainError, RpcError
from provisioner.clients.retry import RetryPolicy
from provisioner.clients.transport import Response, Transport, TransportError
from provisioner.redact import display_url

Log = Callable[[str], None]
Call = tuple[str, list[Any]]

BATCH_SIZE = 500
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass
class ChainStats:
    """Counters for tests and benchmarks. ``rpc_calls`` counts JSON-RPC calls, batched or not."""

    rpc_calls: int = 0
    http_requests: int = 0
    batch_requests: int = 0
    sent_transactions: int = 0


class _HttpStatus(Exception):
    """A non-200 answer; ``status`` (and ``retry_after``) drive the shared retry policy."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class JsonRpc:
    """POSTs JSON-RPC calls and batches to one node."""

    def __init__(
        self,
        url: str,
        transport: Transport,
        *,
        timeout: float,
        retry: RetryPolicy,
        stats: ChainStats,
        log: Log | None,
    ) -> None:
        self._url = url
        self.where = display_url(url)
        self._transport = transport
        self._timeout = timeout
        self._retry = retry
        self._stats = stats
        self._stats_lock = threading.Lock()
        self._log = log
        self._ids = itertools.count(1)

    def count_sent(self) -> None:
        with self._stats_lock:
            self._stats.sent_transactions += 1

    def call(self, method: str, params: list[Any]) -> Any:
        result = self.batch([(method, params)], as_batch=False)[0]
        if isinstance(result, RpcError):
            raise result
        return result

    def batch(
        self, calls: Sequence[Call], *, chunk: int = BATCH_SIZE, as_batch: bool = True
    ) -> list[Any | RpcError]:
        """Results in call order; a call's JSON-RPC error comes back as an ``RpcError`` value."""
        results: list[Any | RpcError] = []
        for start in range(0, len(calls), chunk):
            results.extend(self._post(calls[start : start + chunk], as_batch))
        return results

    def _post(self, calls: Sequence[Call], as_batch: bool) -> list[Any | RpcError]:
        ids = [next(self._ids) for _ in calls]
        bodies = [
            {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
            for i, (m, p) in zip(ids, calls, strict=True)
        ]
        payload: object = bodies if as_batch else bodies[0]
        what = f"{calls[0][0]}" if len(calls) == 1 else f"batch of {len(calls)} calls"
        with self._stats_lock:
            self._stats.rpc_calls += len(calls)
            self._stats.batch_requests += int(as_batch)
        try:
            answer = self._retry.call(
                lambda: self._send(payload),
                idempotent=True,  # reads, and rebroadcasts of the very same signed bytes
                describe=f"{what} at {self.where}",
                log=self._log,
            )
        except _HttpStatus as exc:
            raise ChainError(
                f"the Ethereum node at {self.where} answered {what} with {exc}"
            ) from None
        except TransportError as exc:
            raise ChainError(
                f"cannot reach the Ethereum node at {self.where} ({exc.reason})"
            ) from None
        if isinstance(answer, dict) and not as_batch:
            answer = [answer]
        if isinstance(answer, dict) and "error" in answer:  # the whole batch was refused
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            raise RpcError(what, error.get("code"), str(error.get("message", answer["error"])))
        if not isinstance(answer, list):
            raise ChainError(f"the Ethereum node at {self.where} gave no JSON-RPC answer to {what}")
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        out: list[Any | RpcError] = []
        for i, (method, _params) in zip(ids, calls, strict=True):
            item = by_id.get(i)
            if item is None:
                raise ChainError(f"the Ethereum node at {self.where} left {method} unanswered")
            if "error" in item:
                error = item["error"] if isinstance(item["error"], dict) else {}
                out.append(
                    RpcError(
                        method,
                        error.get("code"),
                        str(error.get("message", item["error"])),
                        error.get("data"),
                    )
                )
            else:
                out.append(item.get("result"))
        return out

    def _send(self, payload: object) -> Any:
        with self._stats_lock:
            self._stats.http_requests += 1
        response = self._transport.request(
            "POST", self._url, body=json.dumps(payload), headers=_HEADERS, timeout=self._timeout
        )
        if response.status_code != 200:
            try:
                body = response.json()
            except ValueError:
                body = None
            if (
                isinstance(body, dict | list)
                and response.status_code < 500
                and response.status_code != 429
            ):
                return body  # some nodes send JSON-RPC errors with a 4xx status
            raise _HttpStatus(response.status_code, _retry_after(response))
        try:
            return response.json()
        except ValueError:
            raise ChainError(
                f"the Ethereum node at {self.where} answered with something that is not JSON"
            ) from None


def quantity(value: object, what: str) -> int:
    """A JSON-RPC hex quantity as an int; ChainError for anything else."""
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise ChainError(f"{what}: expected a hex quantity, got {value!r}")


def _retry_after(response: Response) -> float | None:
    header = response.headers.get("Retry-After")
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None
