"""Direct HTTP/1.1 connections: kept-alive sockets per origin, answers parsed by httptools.

Why not urllib3 for these: a request through urllib3 and http.client costs about 340 us of
CPU (``email``'s header parser, urllib3's header dicts and connection checks), this path
about 60 us (llhttp, the C parser of Node.js, does the parsing), measured against OpenBao
on loopback. A run of 1,000 accounts makes thousands of requests that share one
interpreter lock, so that difference is most of a converged plan's time. Requests through
a proxy, and HEAD (whose answer has a length but no body, which httptools cannot be told),
still go through urllib3 in ``transport.py``.

What a failure means for the caller is decided here as it is there: ``Failed`` says
whether the request may have reached the server (any byte of it written) and whether a
time limit ran out. A connection found closed while idle is replaced before anything is
written on it; one that fails after is never written to again, and nothing is resent.
"""

from __future__ import annotations

import logging
import re
import select
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping

import httptools

_log = logging.getLogger(__name__)  # -vv: never a path or a header (provider keys, tokens)
MAX_IDLE = 128  # idle connections kept per origin; the threads of a run share them
_RECEIVE = 65536
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")  # as http.client refuses them
_BAD_NAME = re.compile(r"[\x00-\x20:\x7f]")
_BAD_VALUE = re.compile(r"[\r\n\x00]")


class Failed(Exception):
    """No (whole) answer. ``maybe_sent``: some of the request was written."""

    def __init__(self, reason: str, *, maybe_sent: bool, timeout: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_sent = maybe_sent
        self.timeout = timeout


class Headers(Mapping[str, str]):
    """An answer's headers, looked up in any letter case; repeated ones joined by ", "."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in pairs:
            key = name.lower()
            found = self._items.get(key)
            self._items[key] = (name, value if found is None else f"{found[1]}, {value}")

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


class _Answer:
    """httptools' callbacks: what one answer says, and whether all of it has come."""

    def __init__(self) -> None:
        self.status = 0
        self.reason = b""
        self.pairs: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.pairs.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        # asked now: once the message is done, llhttp has already forgotten it
        self.keep_alive = self.parser is not None and self.parser.should_keep_alive()

    def framed(self) -> bool:
        """Whether the answer says where its body ends (else: at the connection's close)."""
        names = {name.lower() for name, _ in self.pairs}
        return b"content-length" in names or b"transfer-encoding" in names


class Origin:
    """Connections to one ``host:port`` (TLS when ``context`` is given); thread-safe."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext | None) -> None:
        self.host, self.port, self.context = host, port, context
        default = 443 if context is not None else 80
        shown = f"[{host}]" if ":" in host else host
        self._host_header = shown if port == default else f"{shown}:{port}"
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> tuple[int, str, Headers, bytes]:
        """One exchange: (status, reason, headers, body). ``Failed`` when no whole answer came."""
        message = self._message(method, target, headers, body)
        conn = self._take_idle() or self._connect(connect_timeout)
        try:
            conn.settimeout(read_timeout)
            self._send(conn, message)
            answer, reusable = self._receive(conn)
        except BaseException:
            conn.close()
            raise
        if reusable:
            self._give_back(conn)
        else:
            conn.close()
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "%s %s: %d, %d bytes%s",
                method,
                self._host_header,
                answer.status,
                sum(map(len, answer.chunks)),
                "" if reusable else ", connection closed",
            )
        return (
            answer.status,
            answer.reason.decode("latin-1"),
            Headers([(n.decode("latin-1"), v.decode("latin-1")) for n, v in answer.pairs]),
            b"".join(answer.chunks),
        )

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _message(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> bytes:
        if not target.startswith("/") or _BAD_TARGET.search(target):
            raise ValueError("a request path must start with / and hold no spaces or controls")
        given = {name.lower() for name in headers}
        lines = [f"{method} {target} HTTP/1.1"]
        if "host" not in given:
            lines.append(f"Host: {self._host_header}")
        for name, value in headers.items():
            if _BAD_NAME.search(name) or _BAD_VALUE.search(value):
                raise ValueError(f"header {name.strip()[:40]!r}: no line breaks may be in it")
            lines.append(f"{name}: {value}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        if "accept-encoding" not in given:
            lines.append("Accept-Encoding: identity")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body if body else head

    def _take_idle(self) -> socket.socket | None:
        """A kept connection the server has not closed (nothing readable while idle)."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            try:
                readable, _, _ = select.select([conn], [], [], 0)
            except (OSError, ValueError):
                readable = [conn]
            if not readable:
                return conn
            conn.close()  # closed by the server, or it sent something unasked: not trusted

    def _give_back(self, conn: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self, timeout: float) -> socket.socket:
        try:
            conn = socket.create_connection((self.host, self.port), timeout=timeout)
        except socket.gaierror:
            raise Failed("host name not found", maybe_sent=False) from None
        except TimeoutError:
            raise Failed("connect timeout", maybe_sent=False, timeout=True) from None
        except ConnectionRefusedError:
            raise Failed("connection refused", maybe_sent=False) from None
        except OSError:
            raise Failed("could not connect", maybe_sent=False) from None
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _log.debug("new connection to %s%s", self._host_header, " (TLS)" if self.context else "")
        if self.context is None:
            return conn
        try:
            return self.context.wrap_socket(conn, server_hostname=self.host)
        except TimeoutError:
            conn.close()
            raise Failed("connect timeout", maybe_sent=False, timeout=True) from None
        except (ssl.SSLError, ssl.CertificateError, OSError):
            conn.close()
            raise Failed("TLS handshake failed", maybe_sent=False) from None

    @staticmethod
    def _send(conn: socket.socket, message: bytes) -> None:
        try:
            conn.sendall(message)
        except TimeoutError:
            raise Failed(
                "the request could not be written in time", maybe_sent=True, timeout=True
            ) from None
        except OSError as exc:
            raise Failed(f"connection dropped ({type(exc).__name__})", maybe_sent=True) from None

    @staticmethod
    def _receive(conn: socket.socket) -> tuple[_Answer, bool]:
        answer = _Answer()
        parser = answer.parser = httptools.HttpResponseParser(answer)
        until_close = False
        while not answer.complete:
            try:
                data = conn.recv(_RECEIVE)
            except TimeoutError:
                raise Failed("no answer in time", maybe_sent=True, timeout=True) from None
            except OSError as exc:
                raise Failed(
                    f"connection dropped ({type(exc).__name__})", maybe_sent=True
                ) from None
            if not data:
                until_close = answer.headers_done and not answer.framed()
                if until_close:
                    break  # a body that ends where the connection does
                raise Failed("connection dropped (RemoteDisconnected)", maybe_sent=True)
            try:
                parser.feed_data(data)
            except httptools.HttpParserError:
                raise Failed("the answer is not HTTP", maybe_sent=True) from None
        answer.status = parser.get_status_code()
        answer.parser = None
        return answer, answer.keep_alive and not until_close
