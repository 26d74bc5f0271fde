"""Helpers for the money-path invariant tests (issue 15): HTTP stand-ins between the tool and
the sandbox (a recording forwarder, a node whose pool holds another tool's transaction, a
node that says it is mainnet), a remote signer that does not do what it was asked, and
reads of the journal and of the chain that the assertions need."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from support.apply_runs import MOUNT, read_secret, secret_paths, vault

from provisioner.ethaddress import selector
from provisioner.sandbox.control import SandboxInfo

DEPOSIT_SELECTOR = "0x" + selector("deposit(uint256,uint256,uint256,uint256)").hex()

# (request JSON, forward) -> the answer JSON to send back, or None to forward unchanged
RpcHook = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass
class Recorded:
    seq: int
    via: str  # which forwarder saw it
    method: str
    path: str
    body: bytes


@dataclass
class Recording:
    """One ordered log shared by several forwarders (so their requests can be compared)."""

    events: list[Recorded] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: Iterator[int] = field(default_factory=itertools.count)

    def add(self, via: str, method: str, path: str, body: bytes) -> None:
        with self._lock:
            self.events.append(Recorded(next(self._seq), via, method, path, body))


class HttpForwarder:
    """127.0.0.1:<port> forwarding every request to ``target`` (Vault or a JSON-RPC node), each
    recorded in ``recording``; ``rpc_hook`` may answer a JSON-RPC call itself (single calls and
    each call of a batch)."""

    def __init__(
        self,
        target: str,
        *,
        name: str = "",
        recording: Recording | None = None,
        rpc_hook: RpcHook | None = None,
    ) -> None:
        self.target = target.rstrip("/")
        self.name = name
        self.recording = recording
        self.rpc_hook = rpc_hook
        forwarder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, answer = forwarder.forward(
                    self.command, self.path, self.headers, body
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_LIST = _handle  # noqa: N815

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def forward(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if self.recording is not None:
            self.recording.add(self.name, method, path, body)
        if self.rpc_hook is not None and method == "POST" and body:
            answered = self._rpc(body)
            if answered is not None:
                return 200, {"Content-Type": "application/json"}, answered
        keep = {
            k: v
            for k, v in headers.items()
            if k.lower() not in ("host", "content-length", "connection", "accept-encoding")
        }
        response = requests.request(
            method, self.target + path, data=body, headers=keep, timeout=60, allow_redirects=False
        )
        out = {
            k: v
            for k, v in response.headers.items()
            if k.lower()
            not in ("content-length", "transfer-encoding", "connection", "content-encoding")
        }
        return response.status_code, out, response.content

    def _rpc(self, body: bytes) -> bytes | None:
        assert self.rpc_hook is not None
        request = json.loads(body)
        calls = request if isinstance(request, list) else [request]
        answers = []
        for call in calls:
            answer = self.rpc_hook(call)
            if answer is None:
                answer = requests.post(self.target, json=call, timeout=60).json()
            answers.append(answer)
        return json.dumps(answers if isinstance(request, list) else answers[0]).encode()


@contextmanager
def forwarder(target: str, **kwargs: Any) -> Iterator[HttpForwarder]:
    f = HttpForwarder(target, **kwargs)
    try:
        yield f
    finally:
        f.close()


def rpc(sandbox: SandboxInfo, method: str, params: list[Any]) -> Any:
    answer = requests.post(
        sandbox.rpc_url,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
        timeout=30,
    ).json()
    if "error" in answer:
        raise AssertionError(f"{method}: {answer['error']}")
    return answer["result"]


def journal_entries(sandbox: SandboxInfo, state_path: str) -> dict[str, dict[str, Any]]:
    """Every journal entry under ``state_path`` (whatever the layout), by path."""
    out = {}
    for path in secret_paths(sandbox, f"{state_path}/journal"):
        found = read_secret(sandbox, path)
        if found is not None and found[0]:
            out[path] = found[0]
    return out


def deposit_logs(sandbox: SandboxInfo, stark_public: int) -> list[dict[str, Any]]:
    """The chain's LogDeposit events for this STARK key (any position)."""
    from provisioner.clients.chain.abi import LOG_DEPOSIT_TOPIC
    from provisioner.networks import SEPOLIA

    logs = rpc(
        sandbox,
        "eth_getLogs",
        [{"address": SEPOLIA.exchange_contract, "topics": [LOG_DEPOSIT_TOPIC], "fromBlock": "0x0"}],
    )
    return [
        log
        for log in logs
        if int(log["data"][2 + 64 : 2 + 128], 16) == stark_public and not log.get("removed")
    ]


def stark_public(sandbox: SandboxInfo, path: str) -> int:
    found = read_secret(sandbox, path)
    assert found is not None, f"no STARK key at {path}"
    return int(found[0]["public_key"], 16)


def write_owned(sandbox: SandboxInfo, path: str, data: dict[str, str]) -> None:
    """Overwrite a destination's data, keeping its metadata (a restore, a copy-paste)."""
    vault(sandbox).secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point=MOUNT)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class StandInSigner:
    """A remote signer over JSON-RPC holding its key itself (a custody engine's stand-in).

    ``on_transaction(tx)`` may change the transaction it was asked to sign or send (return
    the changed dict) and ``send_delay`` makes eth_sendTransaction answer late: it sleeps,
    and (when ``send_after_timeout``) broadcasts only after the caller gave up, with the
    nonce the node hands out then, as an engine that approves late and picks its own nonce.
    ``send_only`` hides eth_signTransaction.
    """

    def __init__(
        self,
        sandbox: SandboxInfo,
        private_key: str,
        *,
        send_only: bool = False,
        on_transaction: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        from eth_account import Account

        self.sandbox = sandbox
        self.account = Account.from_key(private_key)
        self.send_only = send_only
        self.on_transaction = on_transaction or (lambda tx: tx)
        self.delay_next_send: float = 0.0
        self.late_sends: list[threading.Thread] = []
        self.sent: list[str] = []
        signer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = signer.answer(request)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the caller gave up waiting

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        for thread in self.late_sends:
            thread.join(timeout=30)
        self._server.shutdown()
        self._server.server_close()

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        method, params, rid = request.get("method"), request.get("params") or [], request.get("id")

        def ok(result: Any) -> dict[str, Any]:
            return {"jsonrpc": "2.0", "id": rid, "result": result}

        def err(code: int, message: str) -> dict[str, Any]:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}

        if method == "eth_accounts":
            return ok([self.account.address])
        if method == "eth_signTypedData_v4":
            from eth_account.messages import encode_structured_data

            message = encode_structured_data(text=params[1])
            return ok("0x" + bytes(self.account.sign_message(message).signature).hex())
        if method == "eth_signTransaction":
            if self.send_only:
                return err(-32601, "method not found")
            if not params:
                return err(-32602, "missing transaction")
            return ok(self._sign(self.on_transaction(_tx_ints(params[0]))))
        if method == "eth_sendTransaction":
            tx = self.on_transaction(_tx_ints(params[0]))
            delay, self.delay_next_send = self.delay_next_send, 0.0
            if delay:
                thread = threading.Thread(target=self._late_send, args=(tx, delay), daemon=True)
                self.late_sends.append(thread)
                thread.start()
                time.sleep(delay + 1)
                return err(-32000, "approval came too late")
            return ok(self._broadcast(tx))
        return err(-32601, "method not found")

    def _sign(self, tx: dict[str, Any]) -> str:
        unsigned = {k: v for k, v in tx.items() if k != "from"}
        return "0x" + bytes(self.account.sign_transaction(unsigned).rawTransaction).hex()

    def _broadcast(self, tx: dict[str, Any]) -> str:
        tx_hash = str(rpc(self.sandbox, "eth_sendRawTransaction", [self._sign(tx)]))
        self.sent.append(tx_hash)
        return tx_hash

    def _late_send(self, tx: dict[str, Any], delay: float) -> None:
        time.sleep(delay)
        tx = dict(
            tx,
            nonce=int(
                rpc(self.sandbox, "eth_getTransactionCount", [self.account.address, "pending"]), 16
            ),
        )
        self._broadcast(tx)


def _tx_ints(tx: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tx.items():
        if key in ("from", "to", "data"):
            out[key] = value
        else:
            out[key] = int(value, 16) if isinstance(value, str) else value
    return out
