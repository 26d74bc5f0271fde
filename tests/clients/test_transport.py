"""The one HTTP transport against local servers: redirects, keep-alive (plain and TLS), failures."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from provisioner.clients.retry import Retryability, classify
from provisioner.clients.transport import HttpTransport, Response, Tls, TransportError


class _Recorder(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive. Records (method, path, headers, body) of every request on the
    server's ``seen``; ``/to-b`` redirects to ``/b``, ``/elsewhere`` to the server in
    ``server.other``, ``/see-other`` answers 303; each answer names the connection it came on."""

    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server = self.server
        server.seen.append((self.command, self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        if self.path in ("/a", "/to-b"):
            return self._redirect(307, "/b")
        if self.path == "/see-other":
            return self._redirect(303, "/b")
        if self.path == "/elsewhere":
            return self._redirect(307, server.other + "/stolen")  # type: ignore[attr-defined]
        if self.path == "/hang":
            threading.Event().wait(2)
        answer = json.dumps(
            {
                "port": self.client_address[1],
                "path": self.path,
                "auth": self.headers.get("Authorization"),
            }
        ).encode()
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("RateLimit-Remaining", "7")
        self.end_headers()
        self.wfile.write(answer)
        if self.path == "/drop":
            self.close_connection = True

    def _redirect(self, status: int, location: str) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_DELETE = _handle  # noqa: N815 - http.server's naming

    def log_message(self, *_: object) -> None:
        return None


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, *_: object) -> None:
        return None  # a client that gave up (timeout, refused certificate): expected here


def _serve(context: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    httpd = _Quiet(("127.0.0.1", 0), _Recorder)
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.seen = []  # type: ignore[attr-defined]
    httpd.other = ""  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _url(httpd: ThreadingHTTPServer, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture
def servers() -> Iterator[tuple[ThreadingHTTPServer, ThreadingHTTPServer]]:
    a, b = _serve(), _serve()
    a.other, b.other = _url(b), _url(a)  # type: ignore[attr-defined]
    yield a, b
    a.shutdown()
    b.shutdown()


@pytest.fixture
def http() -> Iterator[HttpTransport]:
    transport = HttpTransport()
    yield transport
    transport.close()


def _paths(httpd: ThreadingHTTPServer) -> list[tuple[str, str]]:
    return [(method, path) for method, path, _h, _b in httpd.seen]  # type: ignore[attr-defined]


def test_a_redirected_post_reaches_the_server_once_per_hop(
    servers: tuple[ThreadingHTTPServer, ThreadingHTTPServer], http: HttpTransport
) -> None:
    a, _ = servers
    got = http.request("POST", _url(a) + "/a", body=b'{"x": 1}', timeout=5)
    assert got.status_code == 200 and got.json()["path"] == "/b"
    assert _paths(a) == [("POST", "/a"), ("POST", "/b")]  # 307 keeps method and body
    assert [body for *_rest, body in a.seen] == [b'{"x": 1}'] * 2  # type: ignore[attr-defined]


def test_a_303_is_followed_with_a_get_and_no_body(
    servers: tuple[ThreadingHTTPServer, ThreadingHTTPServer], http: HttpTransport
) -> None:
    a, _ = servers
    http.request("POST", _url(a) + "/see-other", body=b"secret-body", timeout=5)
    assert _paths(a) == [("POST", "/see-other"), ("GET", "/b")]
    assert a.seen[1][3] == b""  # type: ignore[attr-defined]


def test_a_redirect_to_another_origin_is_not_followed_and_carries_nothing_there(
    servers: tuple[ThreadingHTTPServer, ThreadingHTTPServer], http: HttpTransport
) -> None:
    a, b = servers
    headers = {
        "X-Vault-Token": "canary-token",
        "X-Vault-Namespace": "canary-ns",
        "DYDX-SIGNATURE": "canary-signature",
        "DYDX-API-KEY": "canary-key",
    }
    got = http.request("POST", _url(a) + "/elsewhere", body=b"canary", headers=headers, timeout=5)
    assert got.status_code == 307  # the caller sees the redirect
    assert _paths(a) == [("POST", "/elsewhere")]
    assert b.seen == []  # type: ignore[attr-defined]


def test_url_credentials_become_basic_auth_and_headers_are_case_insensitive(
    servers: tuple[ThreadingHTTPServer, ThreadingHTTPServer], http: HttpTransport
) -> None:
    a, _ = servers
    host = _url(a).removeprefix("http://")
    got = http.request("GET", f"http://user:pw@{host}/to-b", timeout=5)
    assert got.status_code == 200 and got.json()["auth"].startswith("Basic ")
    assert got.headers["ratelimit-remaining"] == "7"
    assert "user:pw" not in json.dumps(a.seen[0][1])  # type: ignore[attr-defined]
    assert http.request("GET", f"{_url(a)}/missing", timeout=5).status_code == 404


def test_keep_alive_connections_are_reused_and_replaced_when_dropped(
    servers: tuple[ThreadingHTTPServer, ThreadingHTTPServer], http: HttpTransport
) -> None:
    base = _url(servers[0])
    first = http.request("GET", f"{base}/x", timeout=5).json()["port"]
    assert http.request("GET", f"{base}/y", timeout=5).json()["port"] == first
    http.request("GET", f"{base}/drop", timeout=5)
    threading.Event().wait(0.1)  # the server has closed it by now
    after = http.request("GET", f"{base}/z", timeout=5).json()
    assert after["port"] != first and after["path"] == "/z"  # a new one, no error


def _serve_tls(tmp_path: Path, *subject: str) -> tuple[ThreadingHTTPServer, Path]:
    """A server with a self-signed certificate of ``subject`` (openssl req arguments)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return _serve(context), cert


def test_keep_alive_over_tls(tmp_path: Path) -> None:
    httpd, cert = _serve_tls(
        tmp_path, "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"
    )
    http = HttpTransport(tls=Tls(ca=str(cert)))
    try:
        base = _url(httpd, "https")
        ports = {http.request("GET", f"{base}/{i}", timeout=5).json()["port"] for i in range(3)}
        assert len(ports) == 1
        with pytest.raises(TransportError) as untrusted:
            HttpTransport().request("GET", f"{base}/x", timeout=5)
        assert not untrusted.value.maybe_sent
    finally:
        http.close()
        httpd.shutdown()


def test_a_certificate_naming_its_host_only_in_the_common_name_is_refused(tmp_path: Path) -> None:
    """Review: the direct connections' TLS context kept Python's common-name fallback, which
    urllib3 turns off: such a certificate passed a GET and failed a HEAD."""
    httpd, cert = _serve_tls(tmp_path, "-subj", "/CN=localhost")
    http = HttpTransport(tls=Tls(ca=str(cert)))
    try:
        for method in ("GET", "POST", "HEAD"):
            with pytest.raises(TransportError) as refused:
                http.request(method, f"https://localhost:{httpd.server_address[1]}/x", timeout=5)
            assert not refused.value.maybe_sent
        assert httpd.seen == []  # type: ignore[attr-defined]
    finally:
        http.close()
        httpd.shutdown()


def test_failures_say_whether_the_request_may_have_reached_the_server(
    servers: tuple[ThreadingHTTPServer, ThreadingHTTPServer], http: HttpTransport
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(TransportError) as refused:
        http.request("GET", closed + "/", timeout=2)
    assert not refused.value.maybe_sent
    assert classify(refused.value)[0] is Retryability.ALWAYS
    with pytest.raises(TransportError) as slow:
        http.request("GET", _url(servers[0]) + "/hang", timeout=0.3)
    assert slow.value.maybe_sent and slow.value.timeout
    assert classify(slow.value)[0] is Retryability.IF_IDEMPOTENT


class _ForwardProxy(BaseHTTPRequestHandler):
    """A forwarding proxy that answers every request itself, so no target host is ever
    resolved or reached: plain HTTP arrives as an absolute URI, HTTPS as a CONNECT that it
    refuses. Records (method, request line target, Proxy-Authorization) on ``seen``."""

    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        self.server.seen.append(  # type: ignore[attr-defined]
            (self.command, self.path, self.headers.get("Proxy-Authorization"))
        )
        if self.command == "CONNECT":
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = b'{"via": "proxy"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_CONNECT = _handle  # noqa: N815 - http.server's naming

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def forward_proxy() -> Iterator[ThreadingHTTPServer]:
    httpd = _Quiet(("127.0.0.1", 0), _ForwardProxy)
    httpd.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()


def _proxy_url(httpd: ThreadingHTTPServer, auth: str = "") -> str:
    return f"http://{auth}127.0.0.1:{httpd.server_address[1]}"


def test_plain_http_goes_through_the_environments_proxy(
    forward_proxy: ThreadingHTTPServer,
) -> None:
    transport = HttpTransport(env={"HTTP_PROXY": _proxy_url(forward_proxy, "desk:pw@")})
    answer = transport.request("GET", "http://rpc.provider.invalid/v1/key", timeout=5)
    assert answer.json() == {"via": "proxy"}
    ((method, target, auth),) = forward_proxy.seen  # type: ignore[attr-defined]
    assert (method, target) == ("GET", "http://rpc.provider.invalid/v1/key")
    assert auth == "Basic ZGVzazpwdw=="


def test_https_is_tunnelled_through_the_proxy(forward_proxy: ThreadingHTTPServer) -> None:
    transport = HttpTransport(env={"https_proxy": _proxy_url(forward_proxy)})
    with pytest.raises(TransportError) as raised:
        transport.request("GET", "https://api.dydx.invalid/v3/time", timeout=5)
    assert raised.value.maybe_sent is False  # refused at CONNECT: nothing reached dYdX
    assert [s[:2] for s in forward_proxy.seen] == [  # type: ignore[attr-defined]
        ("CONNECT", "api.dydx.invalid:443")
    ]


def test_no_proxy_and_loopback_go_direct(
    forward_proxy: ThreadingHTTPServer,
    servers: tuple[ThreadingHTTPServer, ThreadingHTTPServer],
) -> None:
    env = {"HTTP_PROXY": _proxy_url(forward_proxy), "NO_PROXY": "vault.internal.invalid"}
    transport = HttpTransport(env=env)
    with pytest.raises(TransportError):
        transport.request("GET", "http://vault.internal.invalid/v1/sys/health", timeout=5)
    port = servers[0].server_address[1]
    assert transport.request("GET", f"http://127.0.0.1:{port}/x", timeout=5).json()["path"] == "/x"
    assert forward_proxy.seen == []  # type: ignore[attr-defined]


def _loopback_tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a self-signed certificate for 127.0.0.1, and that certificate."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert


def test_a_tls_failure_after_the_request_was_written_may_have_reached_the_server(
    tmp_path: Path,
) -> None:
    """Review: urllib3 raises the same SSLError for a bad record in the answer as for a failed
    handshake, and it was reported as never sent (retried for any method, a POST through a
    proxy's tunnel included), though the server had read the request."""
    context, cert = _loopback_tls(tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with context.wrap_socket(conn, server_side=True) as tls:
                seen.append(tls.recv(65536).split(b"\r\n", 1)[0])
                # a record no key decrypts, written beneath TLS: the client's read fails
                with socket.socket(fileno=os.dup(tls.fileno())) as raw:
                    raw.sendall(b"\x17\x03\x03\x00\x20" + os.urandom(32))
                    threading.Event().wait(0.2)

    threading.Thread(target=serve, daemon=True).start()
    http = HttpTransport(tls=Tls(ca=str(cert)), env={})
    try:
        for method in ("POST", "HEAD"):  # direct, and urllib3 (as a proxied POST would be)
            with pytest.raises(TransportError) as failed:
                http.request(
                    method, f"https://127.0.0.1:{listener.getsockname()[1]}/v3/x", timeout=5
                )
            assert failed.value.maybe_sent, method
    finally:
        http.close()
        listener.close()
    assert seen == [b"POST /v3/x HTTP/1.1", b"HEAD /v3/x HTTP/1.1"]


def test_a_refused_certificate_says_why_on_both_paths(tmp_path: Path) -> None:
    """Review: every TLS failure read "TLS handshake failed"; a wrong CA bundle and a
    certificate for another host could not be told apart from a protocol mismatch."""
    httpd, cert = _serve_tls(
        tmp_path, "-subj", "/CN=other.invalid", "-addext", "subjectAltName=DNS:other.invalid"
    )
    base = _url(httpd, "https")
    try:
        for transport, expected in (
            (HttpTransport(tls=Tls(ca=str(cert)), env={}), "address mismatch"),
            (HttpTransport(env={}), "self-signed"),
        ):
            for method in ("GET", "HEAD"):
                with pytest.raises(TransportError) as refused:
                    transport.request(method, f"{base}/x", timeout=5)
                assert "certificate is refused" in refused.value.reason, method
                assert expected in refused.value.reason, method
                assert not refused.value.maybe_sent
            transport.close()
        assert httpd.seen == []  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()


def test_an_answers_repr_never_shows_its_body() -> None:
    """Review: Response's dataclass repr printed ``content``, which for a Vault read or a new
    API key is the secret itself, into any log line, assertion or traceback that showed it."""
    answer = Response(200, {"Content-Type": "application/json"}, b'{"secret": "canary-5f2e"}')
    assert "canary" not in repr(answer) and "canary" not in str(answer)
    assert "200" in repr(answer)


def test_a_tls_answer_that_ends_at_the_close_must_end_with_close_notify(tmp_path: Path) -> None:
    """Review: a body without length ended by a bare TCP close (which anyone on the path can
    forge) was taken as whole over TLS: {"balance": "10 of {"balance": "1000"}."""
    context, cert = _loopback_tls(tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for notify in (False, True):
            conn, _ = listener.accept()
            tls = context.wrap_socket(conn, server_side=True)
            tls.recv(65536)
            tls.sendall(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"balance": "10')
            if notify:
                tls.sendall(b'00"}')
                with contextlib.suppress(OSError):  # the client may close before answering
                    tls.unwrap()  # close_notify: the end is the server's
                conn.close()
            else:
                socket.socket(fileno=tls.detach()).close()  # a FIN without close_notify

    threading.Thread(target=serve, daemon=True).start()
    http = HttpTransport(tls=Tls(ca=str(cert)), env={})
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/balance"
    try:
        with pytest.raises(TransportError) as cut:
            http.request("GET", url, timeout=5)
        assert cut.value.maybe_sent
        assert http.request("GET", url, timeout=5).json() == {"balance": "1000"}
    finally:
        http.close()
        listener.close()
