"""Direct connections (``provisioner/clients/direct.py``) against a server that answers in raw bytes:
the framings HTTP allows, answers cut short, and requests that must never be written."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from provisioner.clients import direct
from provisioner.clients.transport import HttpTransport, TransportError

_PAUSE = b"<pause>"  # in a raw answer: the server waits 0.2 s there
# request head -> raw answer, and whether to close the connection after it (an HTTP/1.0 answer
# always does); None: close at once
Answer = Callable[[bytes], bytes | tuple[bytes, bool] | None]


class _RawServer:
    """Answers each request on a connection with ``answer(head)``; records (connection, head)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.seen: list[tuple[int, bytes]] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        number = 0
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            number += 1
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                self.seen.append((number, head))
                answer = self.answer(head)
                if answer is None:
                    return
                raw, close = answer if isinstance(answer, tuple) else (answer, False)
                for part in raw.split(_PAUSE):
                    try:
                        conn.sendall(part)
                    except OSError:
                        return  # the client gave up on the answer (too large, too slow)
                    time.sleep(0.2 if _PAUSE in raw else 0)
                if close or raw.startswith(b"HTTP/1.0"):
                    return  # an HTTP/1.0 body ends where the connection does

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], _RawServer]]:
    made: list[_RawServer] = []

    def start(answer: Answer) -> _RawServer:
        made.append(_RawServer(answer))
        return made[-1]

    yield start
    for server in made:
        server.close()


@pytest.fixture
def http() -> Iterator[HttpTransport]:
    transport = HttpTransport(env={})
    yield transport
    transport.close()


def _ok(body: bytes, *extra: bytes) -> bytes:
    return b"\r\n".join([b"HTTP/1.1 200 OK", b"Content-Length: %d" % len(body), *extra, b"", body])


def test_a_body_that_ends_with_the_connection_is_read_whole_and_the_connection_not_kept(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    server = serve(lambda head: b"HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\nall of it")
    got = http.request("GET", server.url + "/x", timeout=5)
    assert (got.status_code, got.content, got.headers["x-a"]) == (200, b"all of it", "1")
    assert http.request("GET", server.url + "/y", timeout=5).content == b"all of it"
    assert [number for number, _ in server.seen] == [1, 2]  # a new connection each time


def test_chunked_answers_are_joined_and_their_connection_reused(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    chunked = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n'
    server = serve(lambda head: chunked)
    assert http.request("GET", server.url + "/1", timeout=5).json() == {"a": 1}
    assert http.request("GET", server.url + "/2", timeout=5).json() == {"a": 1}
    assert [number for number, _ in server.seen] == [1, 1]


def test_headers_are_looked_up_in_any_case_and_repeated_ones_joined(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    server = serve(lambda head: _ok(b"{}", b"Vary: a", b"vary: b", b"RateLimit-Remaining: 7"))
    got = http.request("GET", server.url + "/", timeout=5)
    assert got.headers["VARY"] == "a, b"
    assert got.headers.get("ratelimit-remaining") == "7"
    assert got.headers.get("Retry-After") is None


def test_an_answer_cut_short_may_have_been_acted_on_and_the_next_request_starts_afresh(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    cut = iter([(b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"half":', True)])
    server = serve(lambda head: next(cut, _ok(b'{"whole": true}')))
    with pytest.raises(TransportError) as raised:
        http.request("POST", server.url + "/pay", body=b"{}", timeout=5)
    assert raised.value.maybe_sent and not raised.value.timeout
    # the cut connection is never written to again: the retry's request opens its own
    assert http.request("POST", server.url + "/pay", body=b"{}", timeout=5).json() == {
        "whole": True
    }
    assert [number for number, _ in server.seen] == [1, 2]


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",  # not HTTP
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
    ],
    ids=["not-http", "switching-protocols"],
)
def test_an_answer_that_is_not_one_is_an_error_after_sending(
    serve: Callable[[Answer], _RawServer], http: HttpTransport, raw: bytes
) -> None:
    server = serve(lambda head: raw)
    with pytest.raises(TransportError) as raised:
        http.request("GET", server.url + "/", timeout=5)
    assert raised.value.maybe_sent


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    server = serve(lambda head: _ok(b"{}"))
    canary = "CANARY-token-5f2e\r\nX-Injected: 1"
    with pytest.raises(ValueError) as raised:
        http.request("GET", server.url + "/", headers={"X-Vault-Token": canary}, timeout=5)
    assert "CANARY" not in str(raised.value)
    with pytest.raises(ValueError):
        http.request("GET", server.url + "/a b", timeout=5)
    assert server.seen == []


def test_a_request_names_its_host_and_length_and_a_post_without_body_says_zero(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    server = serve(lambda head: _ok(b"{}"))
    http.request("POST", server.url + "/v1/x?list=true", timeout=5)
    http.request("GET", server.url + "/v1/y", timeout=5)
    (_, post), (_, get) = server.seen
    port = server.url.rsplit(":", 1)[1]
    assert post.startswith(b"POST /v1/x?list=true HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}".encode() in post and b"Content-Length: 0" in post
    assert b"Content-Length" not in get


def test_head_goes_through_urllib3_and_reads_no_body(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    server = serve(lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")
    got = http.request("HEAD", server.url + "/", timeout=5)
    assert (got.status_code, got.content) == (200, b"")


def test_a_request_that_cannot_be_written_whole_may_have_reached_the_server() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def read_some_and_close() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)

    threading.Thread(target=read_some_and_close, daemon=True).start()
    origin = direct.Origin("127.0.0.1", listener.getsockname()[1], None)
    with pytest.raises(direct.Failed) as raised:
        origin.request(
            "POST", "/v3/api-keys", {}, b"x" * 20_000_000, connect_timeout=5, read_timeout=5
        )
    listener.close()
    assert raised.value.maybe_sent and not raised.value.timeout


def test_debug_lines_name_the_origin_and_status_never_a_path_or_header(
    serve: Callable[[Answer], _RawServer], http: HttpTransport, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(lambda head: _ok(b"{}"))
    canary = "canary-" + "5f" * 12
    with caplog.at_level(logging.DEBUG, logger="provisioner.clients.direct"):
        http.request("POST", f"{server.url}/v2/{canary}", headers={"X-Key": canary}, timeout=5)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "new connection to 127.0.0.1:" in logged and ": 200, 2 bytes" in logged
    assert canary not in logged


def test_an_interim_answer_is_skipped_and_never_handed_to_the_next_request(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    """Review: 100 Continue came back as the answer, and the real one, still on its way, was
    read by the next request on that connection (another account's API key secret)."""
    keys = iter([b"A", b"B"])

    def slow_final(head: bytes) -> tuple[bytes, bool]:
        key = next(keys)
        return (
            b"HTTP/1.1 100 Continue\r\n\r\n"
            + _PAUSE
            + b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            + _ok(b'{"key": "%s"}' % key),
            False,
        )

    server = serve(slow_final)
    first = http.request("POST", server.url + "/v3/api-keys", body=b"{}", timeout=5)
    second = http.request("POST", server.url + "/v3/api-keys", body=b"{}", timeout=5)
    assert (first.status_code, first.json(), second.json()) == (200, {"key": "A"}, {"key": "B"})
    assert "link" not in first.headers


def test_an_answer_after_the_answer_is_read_by_no_one_and_its_connection_closed(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    """Review: two answers in one read were merged (the 200 of a write came back as a 500)."""
    server = serve(
        lambda head: _ok(b'{"a": 1}') + b"HTTP/1.1 500 Boom\r\nContent-Length: 2\r\n\r\n{}"
    )
    got = http.request("POST", server.url + "/write", body=b"{}", timeout=5)
    assert (got.status_code, got.reason, got.json()) == (200, "OK", {"a": 1})
    assert got.headers["content-length"] == "8"
    http.request("GET", server.url + "/next", timeout=5)
    assert [number for number, _ in server.seen] == [1, 2]


def test_a_scheme_other_than_http_or_https_is_never_sent(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    """Review: wss:// (accepted as secure for rpc_url) and typos like htps:// went out in clear."""
    server = serve(lambda head: _ok(b"{}"))
    for scheme in ("wss", "htps", "ws"):
        with pytest.raises(TransportError) as raised:
            http.request(
                "POST", server.url.replace("http", scheme, 1) + "/k", body=b"{}", timeout=5
            )
        assert not raised.value.maybe_sent
    assert server.seen == []


def test_too_many_headers_is_a_transport_error(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    many = [b"X-%d: y" % i for i in range(direct.MAX_HEADERS + 1)]
    server = serve(lambda head: _ok(b"{}", *many))
    with pytest.raises(TransportError, match="too large"):
        http.request("GET", server.url + "/", timeout=5)


def test_framing_headers_are_the_transports_and_a_user_agent_is_sent(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    server = serve(lambda head: _ok(b"{}"))
    for name in ("Content-Length", "connection", "Host", "Transfer-Encoding"):
        with pytest.raises(ValueError):
            http.request("POST", server.url + "/", body=b"{}", headers={name: "2"}, timeout=5)
    with pytest.raises(ValueError):
        http.request("GE T\r\nX: y", server.url + "/", timeout=5)
    assert server.seen == []
    http.request("GET", server.url + "/", timeout=5)
    assert b"User-Agent: dydx-provisioner/" in server.seen[0][1]


def test_an_answer_sent_before_the_whole_body_was_read_is_returned(http: HttpTransport) -> None:
    """Review: a server that refuses a body early (413, 401) and closes was reported as a
    dropped connection that may have acted on it; urllib3 returns that answer."""
    listener = socket.create_server(("127.0.0.1", 0))

    def refuse_early() -> None:
        conn, _ = listener.accept()
        with conn:
            while b"\r\n\r\n" not in conn.recv(65536):
                pass
            conn.sendall(
                b"HTTP/1.1 413 Too Large\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
            )
            conn.shutdown(socket.SHUT_WR)
            time.sleep(0.2)

    threading.Thread(target=refuse_early, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/kv"
    try:
        got = http.request("POST", url, body=b"x" * 20_000_000, timeout=5)
    finally:
        listener.close()
    assert (got.status_code, got.content) == (413, b"{}")


def test_a_header_that_latin_1_cannot_hold_is_refused_without_the_request_in_the_error(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    """Review: the head's encoding raised UnicodeEncodeError, whose ``object`` is the whole
    head: every header of the request, the X-Vault-Token among them."""
    server = serve(lambda head: _ok(b"{}"))
    canary = "canary-token-5f2e"
    with pytest.raises(ValueError) as raised:
        http.request(
            "GET",
            server.url + "/",
            headers={"X-Vault-Token": canary, "X-Note": "5 \u20ac"},
            timeout=5,
        )
    error: BaseException | None = raised.value
    while error is not None:
        assert canary not in repr(error) and canary not in repr(vars(error))
        assert canary not in repr(getattr(error, "object", ""))
        error = error.__context__
    assert server.seen == []


def test_a_path_outside_ascii_is_sent_percent_encoded_as_utf_8(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    """Review: it went out as raw latin-1 bytes (caf\\xe9: not UTF-8, another path than the
    one meant, and not what urllib3 sends), or failed to encode at all (\u20ac)."""
    server = serve(lambda head: _ok(b"{}"))
    http.request("GET", server.url + "/v1/kv/data/caf\u00e9-\u20ac?x=\u00fc", timeout=5)
    assert server.seen[0][1].startswith(b"GET /v1/kv/data/caf%C3%A9-%E2%82%AC?x=%C3%BC HTTP/1.1")


def test_bytes_after_a_whole_answer_that_are_no_answer_do_not_lose_it(
    serve: Callable[[Answer], _RawServer], http: HttpTransport
) -> None:
    """Review: junk after a whole answer, in the same read, made the parser fail and the answer
    was dropped as 'not HTTP': a new API key's secret lost, the key made all the same."""
    after = iter([b"\x00garbage", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"])
    server = serve(lambda head: _ok(b'{"secret": "s"}') + next(after, b""))
    for _ in range(2):
        got = http.request("POST", server.url + "/v3/api-keys", body=b"{}", timeout=5)
        assert (got.status_code, got.json()) == (200, {"secret": "s"})
    http.request("GET", server.url + "/next", timeout=5)
    assert [number for number, _ in server.seen] == [1, 2, 3]  # such a connection is not kept


@pytest.mark.parametrize("framing", ["length", "chunked", "until-close"])
def test_an_answer_larger_than_the_cap_is_an_error_and_its_connection_closed(
    serve: Callable[[Answer], _RawServer],
    http: HttpTransport,
    monkeypatch: pytest.MonkeyPatch,
    framing: str,
) -> None:
    """Review: a body was read into memory however large: a server's endless body grew until
    the run was killed in the middle of an apply."""
    monkeypatch.setattr(direct, "MAX_BODY", 4 * 1048576)
    body = b"x" * (5 * 1048576)
    raw = {
        "length": _ok(body),
        "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"100000\r\n" + b"x" * 1048576 + b"\r\n") * 5,
        "until-close": b"HTTP/1.0 200 OK\r\n\r\n" + body,
    }[framing]
    server = serve(lambda head: (raw, framing == "until-close"))
    with pytest.raises(TransportError, match="body is over 4 MiB") as raised:
        http.request("GET", server.url + "/big", timeout=5)
    assert raised.value.maybe_sent


@pytest.mark.parametrize("start", [b"HTTP/1.1 200 ", b"HTTP/1.1 200 OK\r\nX-Big: "])
def test_a_status_line_or_header_without_end_is_refused_at_the_cap(
    serve: Callable[[Answer], _RawServer], http: HttpTransport, start: bytes
) -> None:
    """Review: the caps were checked only once a header had ended; a status line or header
    value that went on was kept in memory (and copied, quadratically) without bound."""
    server = serve(lambda head: start + b"a" * (4 * direct.MAX_HEAD))
    began = time.monotonic()
    with pytest.raises(TransportError, match="headers are too large") as raised:
        http.request("GET", server.url + "/", timeout=5)
    assert raised.value.maybe_sent and time.monotonic() - began < 2
