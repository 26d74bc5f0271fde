"""A recording fake of ``provisioner.clients.transport.Transport``: scripted answers, every request kept."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from urllib3 import HTTPHeaderDict

from provisioner.clients.transport import Response, Tls

Answer = Response | Exception
Responder = Callable[["Sent"], Answer]


@dataclass(frozen=True)
class Sent:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    timeout: float

    def json(self) -> Any:
        return json.loads(self.body or b"null")


def answer(
    status: int = 200, body: Any = None, headers: Mapping[str, str] | None = None
) -> Response:
    """A Response with ``body`` as JSON (bytes and str are sent as they are)."""
    if isinstance(body, bytes | str):
        content = body.encode() if isinstance(body, str) else body
    else:
        content = b"" if body is None else json.dumps(body).encode()
    return Response(status, HTTPHeaderDict(dict(headers or {})), content, "")


@dataclass
class FakeTransport:
    """Answers each request with ``respond(sent)``; raises what it returns if that is an exception."""

    respond: Responder = field(default=lambda _sent: answer(200, {}))
    sent: list[Sent] = field(default_factory=list)

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        tls: Tls | None = None,
        connect_timeout: float | None = None,
    ) -> Response:
        payload = body.encode() if isinstance(body, str) else body
        request = Sent(method, url, dict(headers or {}), payload, timeout)
        self.sent.append(request)
        result = self.respond(request)
        if isinstance(result, Exception):
            raise result
        return result

    def close(self) -> None:
        return None
