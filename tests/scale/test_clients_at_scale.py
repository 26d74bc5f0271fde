"""Client paths that only show at scale: capability checks for hundreds of accounts, the hand-rolled
ABI words and checksums of the batched chain reads, and the lean HTTP transport's error mapping."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from provisioner.clients import chain
from provisioner.clients.http import HttpTransport
from provisioner.clients.retry import Retryability, classify
from provisioner.clients.vault import VaultClient
from provisioner.manifest.model import SecretRef, VaultAuth, VaultSpec
from provisioner.redact import Redactor
from provisioner.sandbox.control import SandboxInfo
from provisioner.secrets import SecretResolver


@pytest.mark.sandbox
def test_capabilities_for_more_paths_than_one_request_may_carry(sandbox: SandboxInfo) -> None:
    redactor = Redactor()
    resolver = SecretResolver(redactor, {"T": sandbox.vault_token})
    spec = VaultSpec(
        address=sandbox.vault_addr, auth=VaultAuth(method="token", token=SecretRef("env", "T"))
    )
    vault = VaultClient.connect(spec, resolver, redactor)
    wanted = {vault.data_path(f"scale/acct-{i}/stark"): {"read", "create"} for i in range(1500)}
    assert vault.missing_capabilities(wanted) == {}  # the root token has them all


@pytest.mark.parametrize(
    ("signature", "types", "args"),
    [
        ("balanceOf(address)", ["address"], ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]),
        (
            "allowance(address,address)",
            ["address", "address"],
            ["0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "0x" + "AB" * 20],
        ),
        ("getEthKey(uint256)", ["uint256"], [2**255 + 12345]),
        ("deposit(uint256,uint256,uint256,uint256)", ["uint256"] * 4, [1, 0, 2**256 - 1, 7]),
        (
            "registerUser(address,uint256,bytes)",
            ["address", "uint256", "bytes"],
            ["0x" + "11" * 20, 5, b"\x01" * 65],
        ),
    ],
)
def test_calldata_matches_eth_abi(signature: str, types: list[str], args: list[object]) -> None:
    expected = "0x" + (function_signature_to_4byte_selector(signature) + encode(types, args)).hex()
    assert chain._calldata(signature, types, args) == expected


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/redirect":
            self.send_response(307)
            self.send_header("Location", "/ok")
            self.end_headers()
            return
        if self.path == "/hang":
            threading.Event().wait(2)
        body = (self.headers.get("Authorization") or "none").encode()
        self.send_response(200 if self.path != "/missing" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("RateLimit-Remaining", "7")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_transport_answers_follow_redirects_and_carry_url_credentials(server: str) -> None:
    host = server.removeprefix("http://")
    http = HttpTransport(f"http://user:pw@{host}")
    answer = http.request("GET", f"http://user:pw@{host}/redirect", timeout=5)
    assert answer.status_code == 200 and answer.text.startswith("Basic ")
    assert answer.headers["ratelimit-remaining"] == "7"  # case-insensitive, like requests
    assert http.request("GET", f"{server}/missing", timeout=5).status_code == 404


class _KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; ``/drop`` answers, then closes the connection unannounced (an
    idle timeout on the server's side). Each answer names the connection it came on."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = f"{self.client_address[1]} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/drop":
            self.close_connection = True

    def log_message(self, *_: object) -> None:
        return None


def test_keep_alive_connections_are_per_thread_reused_and_replaced_when_dropped() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    http = HttpTransport(base)
    try:
        first = http.request("GET", f"{base}/a", timeout=5).text.split()
        second = http.request("GET", f"{base}/b", timeout=5).text.split()
        assert first[0] == second[0] and second[1] == "/b"  # one connection, reused
        http.request("GET", f"{base}/drop", timeout=5)
        threading.Event().wait(0.1)  # the server has closed it by now
        after = http.request("GET", f"{base}/c", timeout=5).text.split()
        assert after[0] != first[0] and after[1] == "/c"  # a new one, no error

        def ports(_: int) -> tuple[str, str]:
            one = http.request("GET", f"{base}/x", timeout=5).text.split()[0]
            two = http.request("GET", f"{base}/y", timeout=5).text.split()[0]
            return one, two

        with ThreadPoolExecutor(max_workers=8) as pool:
            pairs = list(pool.map(ports, range(32)))
        assert all(one == two for one, two in pairs)  # each thread keeps its connection
    finally:
        http.close()
        httpd.shutdown()


def test_transport_failures_are_requests_exceptions_the_retry_policy_knows(server: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(requests.ConnectionError) as refused:
        HttpTransport(closed).request("GET", closed + "/", timeout=2)
    assert classify(refused.value)[0] is Retryability.ALWAYS  # nothing was sent
    with pytest.raises(requests.ReadTimeout) as slow:
        HttpTransport(server).request("GET", server + "/hang", timeout=0.3)
    assert classify(slow.value)[0] is Retryability.IF_IDEMPOTENT  # it may have taken effect


def test_a_deposit_refresh_reads_only_new_blocks_and_rereads_the_unfinal_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from provisioner.networks import SEPOLIA

    client = chain.ChainClient("http://127.0.0.1:9", SEPOLIA)
    events = {10: ((1, 1), 5), 200: ((1, 1), 7), 290: ((2, 1), 1)}  # block -> (key, amount)
    head = {"block": 250}
    asked: list[tuple[int, int]] = []

    def logs(first: int, latest: int) -> list[tuple[int, tuple[int, int], int]]:
        asked.append((first, latest))
        return [(b, k, q) for b, (k, q) in sorted(events.items()) if first <= b <= latest]

    monkeypatch.setattr(client, "block_number", lambda: head["block"])
    monkeypatch.setattr(client, "_deposit_logs", logs)
    assert client.deposits() == {(1, 1): 12}
    head["block"] = 300
    assert client.deposits(refresh=True) == {(1, 1): 12, (2, 1): 1}
    assert asked == [(0, 250), (250 - chain.FINAL_AFTER_BLOCKS + 1, 300)]
    del events[290]  # a reorg within the last blocks drops an event: it goes away
    assert client.deposits(refresh=True) == {(1, 1): 12}
