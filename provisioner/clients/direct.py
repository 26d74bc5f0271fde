"""Direct HTTP/1.1 connections: kept-alive sockets per origin, answers parsed by httptools.

Why not urllib3 for these: a request through urllib3 and http.client costs about 340 us of
CPU (``email``'s header parser, urllib3's header dicts and connection checks), one through
``HttpTransport`` and this path about 110 to 135 us (llhttp, the C parser of Node.js, does
the parsing), measured against OpenBao on loopback. A run of 1,000 accounts makes thousands of requests that share one
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
from urllib.parse import quote

import httptools

from provisioner import __version__

_log = logging.getLogger(__name__)  # -vv: never a path or a header (provider keys, tokens)
MAX_IDLE = 128  # idle connections kept per origin; the threads of a run share them
_RECEIVE = 65536
MAX_HEADERS = 100  # as http.client: a hostile server's headers do not grow without bound
MAX_HEAD = 65536
# an answer's body: this client's largest are pages of JSON of well under 1 MiB; without a
# cap a broken or hostile server's endless body grows until the run is killed mid-apply
MAX_BODY = 64 * 1024 * 1024
_USER_AGENT = f"dydx-provisioner/{__version__}"
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")  # as http.client refuses them
_BAD_NAME = re.compile(r"[\x00-\x20:\x7f]")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_LATIN_1 = re.compile(r"[\x00-\xff]*")
_PRINTABLE = "".join(map(chr, range(0x21, 0x7F)))
# framing and the origin are the transport's to say: a caller's would contradict them
_OURS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


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
    """httptools' callbacks: the first final answer on the connection, and whether all of it
    has come. Interim answers (100 Continue, 103 Early Hints) are skipped, as RFC 9110 asks;
    anything after the final answer is ``extra``, read by no one, and the connection closed."""

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.complete = False
        self.extra = False
        self.keep_alive = False
        self.status = 0
        self._start()

    def _start(self) -> None:
        self.reason = b""
        self.pairs: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.head_bytes = 0
        self.body_bytes = 0
        self.headers_done = False

    def on_message_begin(self) -> None:
        if self.complete:
            self.extra = True

    def on_status(self, status: bytes) -> None:
        if not self.complete:
            self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:
            return
        self.head_bytes += len(name) + len(value)
        if self.head_bytes > MAX_HEAD or len(self.pairs) >= MAX_HEADERS:
            raise _TooLarge(_HEAD_TOO_LARGE)
        self.pairs.append((name, value))

    def on_headers_complete(self) -> None:
        if not self.complete:
            self.headers_done = True

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.body_bytes += len(body)
            if self.body_bytes > MAX_BODY:
                raise _TooLarge(f"the answer's body is over {MAX_BODY // 1048576} MiB")
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.complete or self.parser is None:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self._start()  # interim: the final answer follows (101 never gets here)
            return
        self.complete, self.status = True, status
        # asked now: once the message is done, llhttp has already forgotten it
        self.keep_alive = self.parser.should_keep_alive()

    def framed(self) -> bool:
        """Whether the answer says where its body ends (else: at the connection's close)."""
        for name, value in self.pairs:
            name = name.lower()
            if name == b"content-length" or (
                name == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                return True
        return False


_HEAD_TOO_LARGE = "the answer's headers are too large"


class _TooLarge(Exception):
    pass


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
            whole = self._send(conn, message)
            try:
                answer, reusable = self._receive(conn)
            except Failed:
                if whole:
                    raise
                raise Failed(
                    "connection dropped while the request was written", maybe_sent=True
                ) from None
            reusable = reusable and whole
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
        if not method or not method.isascii() or _BAD_TARGET.search(method):
            raise ValueError("a request method holds no spaces or controls")
        if not target.startswith("/") or _BAD_TARGET.search(target):
            raise ValueError("a request path must start with / and hold no spaces or controls")
        if not target.isascii():
            target = quote(target, safe=_PRINTABLE)  # as urllib3 sends it: UTF-8, %-encoded
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host_header}"]
        for name, value in headers.items():
            value = str(value)
            if not name or _BAD_NAME.search(name) or _BAD_VALUE.search(value):
                raise ValueError(f"header {name.strip()[:40]!r}: no line breaks may be in it")
            if not name.isascii() or not (value.isascii() or _LATIN_1.fullmatch(value)):
                # checked, not left to encode(): its error would hold the whole head
                raise ValueError(f"header {name.strip()[:40]!r}: only Latin-1 may be in it")
            if name.lower() in _OURS:
                raise ValueError(f"header {name!r} is set by the transport, not by its callers")
            lines.append(f"{name}: {value}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        given = {name.lower() for name in headers}
        if "accept-encoding" not in given:
            lines.append("Accept-Encoding: identity")
        if "user-agent" not in given:
            lines.append(f"User-Agent: {_USER_AGENT}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body if body else head

    def _take_idle(self) -> socket.socket | None:
        """A kept connection the server has not closed (nothing readable while idle)."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if _quiet(conn):
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
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            conn.close()
            raise Failed("could not connect", maybe_sent=False) from None
        _log.debug("new connection to %s%s", self._host_header, " (TLS)" if self.context else "")
        if self.context is None:
            return conn
        try:
            # an answer that ends at the close must end with TLS close_notify, not a bare TCP FIN
            # that anyone on the path can forge (urllib3 takes that as the end: a truncation)
            return self.context.wrap_socket(
                conn, server_hostname=self.host, suppress_ragged_eofs=False
            )
        except TimeoutError:
            conn.close()
            raise Failed("connect timeout", maybe_sent=False, timeout=True) from None
        except ssl.CertificateError as exc:
            conn.close()
            raise Failed(certificate_reason(exc), maybe_sent=False) from None
        except (ssl.SSLError, OSError):
            conn.close()
            raise Failed("TLS handshake failed", maybe_sent=False) from None

    @staticmethod
    def _send(conn: socket.socket, message: bytes) -> bool:
        """Whether all of ``message`` was written; False: the server closed the connection
        while it was, and may have answered first (a 413 or 401 before the whole body)."""
        try:
            conn.sendall(message)
        except (BrokenPipeError, ConnectionResetError):
            return False  # as urllib3 does: its answer, if any, is still to be read
        except TimeoutError:
            raise Failed(
                "the request could not be written in time", maybe_sent=True, timeout=True
            ) from None
        except OSError as exc:
            raise Failed(f"connection dropped ({type(exc).__name__})", maybe_sent=True) from None
        return True

    @staticmethod
    def _receive(conn: socket.socket) -> tuple[_Answer, bool]:
        answer = _Answer()
        parser = answer.parser = httptools.HttpResponseParser(answer)
        until_close = False
        head_read = 0  # httptools hands over a status line or header only once it has ended
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
                    answer.status = parser.get_status_code()
                    break  # a body that ends where the connection does
                raise Failed("connection dropped (RemoteDisconnected)", maybe_sent=True)
            if not answer.headers_done:
                head_read += len(data)
            try:
                parser.feed_data(data)
            except (httptools.HttpParserUpgrade, httptools.HttpParserError) as exc:
                if answer.complete:
                    answer.extra = True  # junk after a whole answer: that answer stands
                    break
                if isinstance(exc, httptools.HttpParserUpgrade):
                    raise Failed("the server switched protocols", maybe_sent=True) from None
                if isinstance(exc.__context__, _TooLarge):
                    raise Failed(str(exc.__context__), maybe_sent=True) from None
                raise Failed("the answer is not HTTP", maybe_sent=True) from None
            if not answer.headers_done and head_read > MAX_HEAD:
                raise Failed(_HEAD_TOO_LARGE, maybe_sent=True)
        answer.parser = None
        return answer, answer.keep_alive and not until_close and not answer.extra


def certificate_reason(exc: ssl.CertificateError) -> str:
    """Why a server's certificate was refused, as OpenSSL says it (no secret is in it)."""
    why = getattr(exc, "verify_message", None) or "not trusted"
    return f"TLS handshake failed: the server's certificate is refused ({why})"


def _quiet(conn: socket.socket) -> bool:
    """Nothing to read on an idle connection: not closed by the server, nothing sent unasked."""
    if isinstance(conn, ssl.SSLSocket) and conn.pending():
        return False
    try:
        watch = select.poll()
        watch.register(conn, select.POLLIN | select.POLLPRI)
        return not watch.poll(0)
    except (OSError, ValueError):
        return False
