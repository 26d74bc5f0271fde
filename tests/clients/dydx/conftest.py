"""Signers, clients and emulator handles for the dYdX client tests.

Accounts that change state at dYdX are fresh random keys, so a run never collides
with other suites (or with an earlier run on a reused sandbox); anvil's dev accounts
7-9 are used where nothing is written.
"""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from eth_account.messages import encode_structured_data

from provisioner.clients.dydx import DydxClient
from provisioner.clients.ratelimit import RateLimiter
from provisioner.clients.retry import RetryPolicy
from provisioner.networks import SEPOLIA
from provisioner.redact import Redactor
from provisioner.sandbox.control import SandboxInfo
from provisioner.sandbox.processes import free_port

CHAIN_ID = SEPOLIA.chain_id
REPO_ROOT = Path(__file__).resolve().parents[3]
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class KeySigner:
    """The smallest EthSigner: a local key, RFC 6979 signatures."""

    def __init__(self, private_key: str) -> None:
        self._account = Account.from_key(private_key)
        self.private_key = private_key  # test keys only: for driving dydx3 as "someone else"
        self.calls = 0

    def __repr__(self) -> str:
        return f"KeySigner({self.address})"

    @property
    def address(self) -> str:
        return str(self._account.address)

    @property
    def can_sign_raw_transactions(self) -> bool:
        return False

    def sign_typed_data(self, typed_data: dict[str, Any]) -> str:
        self.calls += 1
        message = encode_structured_data(primitive=typed_data)
        return "0x" + bytes(self._account.sign_message(message).signature).hex()

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def send_transaction(self, tx: dict[str, Any]) -> str:
        raise NotImplementedError


class MalleableSigner(KeySigner):
    """Valid signatures that differ call to call, as anti-klepto wallets and MPC signers give."""

    def sign_typed_data(self, typed_data: dict[str, Any]) -> str:
        signature = bytes.fromhex(super().sign_typed_data(typed_data)[2:])
        if self.calls % 2 == 0:  # the (r, n - s) twin: same signer, other bytes
            s = SECP256K1_N - int.from_bytes(signature[32:64], "big")
            v = 55 - signature[64]  # 27 <-> 28
            signature = signature[:32] + s.to_bytes(32, "big") + bytes([v])
        return "0x" + signature.hex()


class ImpostorSigner(KeySigner):
    """Claims one address and signs with another key."""

    def __init__(self, private_key: str, claimed: str) -> None:
        super().__init__(private_key)
        self._claimed = claimed

    @property
    def address(self) -> str:
        return self._claimed


def fresh_signer() -> KeySigner:
    return KeySigner("0x" + os.urandom(32).hex())


@dataclass
class Recorder:
    lines: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines)


def fast_retry(**kwargs: Any) -> RetryPolicy:
    settings: dict[str, Any] = {"max_attempts": 4, "base_delay": 0.05, "max_delay": 0.2}
    settings.update(kwargs)
    return RetryPolicy(**settings)


@dataclass
class ClientKit:
    client: DydxClient
    redactor: Redactor
    log: Recorder


@pytest.fixture
def make_client() -> Iterator[Callable[..., ClientKit]]:
    """``make_client(api_url, retry=..., limiter=..., timeout=...)``: a client with its redactor and log."""
    made: list[DydxClient] = []

    def _make(
        api_url: str,
        *,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        timeout: float = 10.0,
    ) -> ClientKit:
        redactor, log = Redactor(), Recorder()
        client = DydxClient(
            api_url,
            CHAIN_ID,
            redactor=redactor,
            retry=retry or fast_retry(),
            limiter=limiter or RateLimiter(),
            log=log,
            timeout=timeout,
        )
        made.append(client)
        return ClientKit(client, redactor, log)

    yield _make
    for client in made:
        client.close()


class Admin:
    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, self.api_url + path, json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def fault(self, **rule: Any) -> None:
        self("POST", "/admin/faults", rule)


@pytest.fixture
def faults(sandbox: SandboxInfo) -> Iterator[Admin]:
    """The session emulator's admin API, with no fault rules before or after the test."""
    admin = Admin(sandbox.api_url)
    admin("DELETE", "/admin/faults")
    yield admin
    admin("DELETE", "/admin/faults")


@pytest.fixture(scope="module")
def strict_emulator(
    sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An emulator of our own with v3's real limits, on the session's chain; yields its URL."""
    directory = tmp_path_factory.mktemp("strict-emulator")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable, "-m", "provisioner.sandbox.emulator",
        "--host", "127.0.0.1", "--port", str(port),
        "--db", str(directory / "emulator.sqlite3"), "--rpc-url", sandbox.rpc_url,
        "--rate-limits", "strict", "--admin", "--poll-interval", "1",
    ]  # fmt: skip
    with open(directory / "emulator.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(url + "/v3/time", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "strict emulator did not start:\n" + (directory / "emulator.log").read_text()
                )
            time.sleep(0.05)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
