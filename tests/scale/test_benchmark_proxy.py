"""The latency proxy the realistic benchmark puts in front of each service (benchmarks/latency_proxy.py).

Only lower bounds on delays are asserted: a loaded machine may make anything slower, never faster.
"""

from __future__ import annotations

import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from benchmarks.latency_proxy import LatencyProxies, Link, latency_proxies


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _AnswerAfterEnd(socketserver.BaseRequestHandler):
    """Reads the whole request (until the client half-closes), then answers its length."""

    def handle(self) -> None:
        size = 0
        while data := self.request.recv(65536):
            size += len(data)
        self.request.sendall(str(size).encode())


def _serve(handler: type[socketserver.BaseRequestHandler]) -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def answer_port() -> Iterator[int]:
    yield from _serve(_AnswerAfterEnd)


@pytest.fixture
def echo_port() -> Iterator[int]:
    yield from _serve(_Echo)


@pytest.fixture
def proxies() -> Iterator[LatencyProxies]:
    with latency_proxies() as running:
        yield running


def _connect(url: str) -> socket.socket:
    port = int(url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _round_trip(sock: socket.socket, payload: bytes) -> tuple[bytes, float]:
    start = time.perf_counter()
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        assert chunk, "the proxy closed the connection early"
        got += chunk
    return got, time.perf_counter() - start


def test_a_new_connection_pays_its_handshakes_and_then_each_exchange_one_round_trip(
    echo_port: int, proxies: LatencyProxies
) -> None:
    url = proxies.add(f"http://127.0.0.1:{echo_port}", Link(rtt=0.1, connect_rtts=2))
    start = time.perf_counter()  # the handshakes count from the connect, as on a real link
    with _connect(url) as sock:
        first, _ = _round_trip(sock, b"ping")
        first_s = time.perf_counter() - start
        again, again_s = _round_trip(sock, b"pong")
    assert (first, again) == (b"ping", b"pong")
    assert first_s >= 0.3  # two handshake round trips, then the exchange itself
    assert again_s >= 0.1  # kept alive: one round trip
    assert proxies.connections(url) == proxies.connections() == 1


def test_without_handshakes_a_first_exchange_costs_one_round_trip(
    echo_port: int, proxies: LatencyProxies
) -> None:
    url = proxies.add(f"http://127.0.0.1:{echo_port}", Link(rtt=0.08, connect_rtts=0))
    with _connect(url) as sock:
        got, seconds = _round_trip(sock, b"x")
    assert got == b"x" and seconds >= 0.08


def test_bytes_arrive_whole_and_in_order_and_the_end_of_stream_is_passed_on(
    echo_port: int, proxies: LatencyProxies
) -> None:
    url = proxies.add(f"http://127.0.0.1:{echo_port}", Link(rtt=0.02, connect_rtts=1))
    payload = os.urandom(3 * 1024 * 1024)
    with _connect(url) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        got = bytearray()
        while len(got) < len(payload):
            chunk = sock.recv(1 << 20)
            assert chunk
            got += chunk
        sender.join()
        sock.shutdown(socket.SHUT_WR)  # the echo server sees the end, closes; so must we
        assert sock.recv(10) == b""
    assert bytes(got) == payload


def test_a_client_that_half_closes_still_gets_the_answer(
    answer_port: int, proxies: LatencyProxies
) -> None:
    url = proxies.add(f"http://127.0.0.1:{answer_port}", Link(rtt=0.04, connect_rtts=1))
    start = time.perf_counter()
    with _connect(url) as sock:
        sock.sendall(b"x" * 5000)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(100):
            answer += chunk
        seconds = time.perf_counter() - start
    assert answer == b"5000"
    assert seconds >= 0.08  # the handshake's round trip, then the request's


def test_each_proxy_adds_its_own_latency(echo_port: int, proxies: LatencyProxies) -> None:
    slow = proxies.add(f"http://127.0.0.1:{echo_port}", Link(rtt=0.2, connect_rtts=0))
    quick = proxies.add(f"http://127.0.0.1:{echo_port}/v1?x=1", Link(rtt=0.01, connect_rtts=0))
    assert quick.endswith("/v1?x=1") and slow != quick
    with _connect(slow) as sock:
        assert _round_trip(sock, b"a")[1] >= 0.2


def test_only_loopback_services_are_proxied(proxies: LatencyProxies) -> None:
    with pytest.raises(ValueError, match="only 127.0.0.1"):
        proxies.add("http://localhost:8080", Link(rtt=0.05))
