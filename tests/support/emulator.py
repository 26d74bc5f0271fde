"""Helpers for the emulator tests: emulator processes, fresh funded wallets, raw signed requests.

Wallets are fresh random keys funded on the sandbox chain rather than anvil's dev
accounts: other suites share the session's chain and register the dev accounts'
(deterministic) STARK keys there, which would make ``registerUser`` revert here.
"""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from dydx3 import Client
from dydx3.constants import OFF_CHAIN_ONBOARDING_ACTION
from dydx3.eth_signing import SignEthPrivateAction, SignOnboardingAction, SignWithKey
from eth_account import Account

from provisioner.networks import SEPOLIA
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS
from provisioner.sandbox.processes import free_port

CHAIN_ID = SEPOLIA.chain_id
REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 20.0


def rpc(rpc_url: str, method: str, *params: object) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    answer = requests.post(rpc_url, json=body, timeout=10).json()
    assert "error" not in answer, answer
    return answer["result"]


def mine(rpc_url: str, blocks: int) -> None:
    rpc(rpc_url, "anvil_mine", hex(blocks))


@dataclass
class EmulatorProcess:
    """One emulator subprocess; restartable on the same database."""

    rpc_url: str
    db: Path
    log: Path
    flags: tuple[str, ...]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "provisioner.sandbox.emulator",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--db", str(self.db), "--rpc-url", self.rpc_url,
            *self.flags,
        ]  # fmt: skip

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=dict(os.environ),
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if requests.get(f"{self.url}/v3/time", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                pytest.fail(f"emulator did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send ``sig`` to our process (by pid) and wait; returns its exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise

    def admin(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, f"{self.url}{path}", json=body, timeout=10)

    def client(self, wallet: "Wallet", **kwargs: Any) -> Client:
        return Client(
            host=self.url,
            network_id=CHAIN_ID,
            eth_private_key=wallet.key,
            web3_provider=self.rpc_url,
            **kwargs,
        )

    def log_text(self) -> str:
        return self.log.read_text()


def launch(rpc_url: str, directory: Path, *flags: str, name: str = "emulator") -> EmulatorProcess:
    directory.mkdir(parents=True, exist_ok=True)
    emulator = EmulatorProcess(
        rpc_url=rpc_url,
        db=directory / f"{name}.sqlite3",
        log=directory / f"{name}.log",
        flags=flags,
    )
    emulator.start()
    return emulator


@dataclass(frozen=True)
class Wallet:
    address: str  # checksummed
    key: str


def fresh_wallet(rpc_url: str, *, eth_wei: int = 10**20, usdc_units: int = 0) -> Wallet:
    """A new random key, given ETH by anvil and USDC by the stand-in token's open ``mint``."""
    account = Account.create()
    wallet = Wallet(account.address, account.key.hex())
    if eth_wei:
        rpc(rpc_url, "anvil_setBalance", wallet.address, hex(eth_wei))
    if usdc_units:
        data = "0x40c10f19" + wallet.address[2:].lower().rjust(64, "0") + f"{usdc_units:064x}"
        tx = rpc(
            rpc_url,
            "eth_sendTransaction",
            {"from": DEV_ACCOUNTS[0].address, "to": SEPOLIA.usdc_contract, "data": data},
        )
        wait_receipt(rpc_url, tx)
    return wallet


def wait_receipt(rpc_url: str, tx_hash: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        receipt = rpc(rpc_url, "eth_getTransactionReceipt", tx_hash)
        if receipt:
            assert int(receipt["status"], 16) == 1, receipt
            return dict(receipt)
        time.sleep(0.05)
    raise AssertionError(f"no receipt for {tx_hash}")


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Polls ``predicate()`` until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


# -- raw v3 requests, signed with dydx3's own signing code --------------------------------
def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now_iso(offset_s: float = 0.0) -> str:
    return iso(datetime.now(UTC) + timedelta(seconds=offset_s))


def onboarding_signature(key: str, address: str, chain_id: int = CHAIN_ID) -> str:
    signer = SignOnboardingAction(SignWithKey(key), chain_id)
    return str(signer.sign(address, action=OFF_CHAIN_ONBOARDING_ACTION))


def eth_private_headers(
    key: str, address: str, method: str, path: str, body: str = "{}", timestamp: str | None = None
) -> dict[str, str]:
    timestamp = timestamp or now_iso()
    signer = SignEthPrivateAction(SignWithKey(key), CHAIN_ID)
    signature = signer.sign(
        address, method=method, request_path=path, body=body, timestamp=timestamp
    )
    return {
        "DYDX-SIGNATURE": signature,
        "DYDX-ETHEREUM-ADDRESS": address,
        "DYDX-TIMESTAMP": timestamp,
    }


def hmac_signature(secret: str, message: str, *, urlsafe: bool = True, padded: bool = True) -> str:
    digest = hmac.new(
        base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)),
        message.encode(),
        hashlib.sha256,
    )
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(digest.digest()).decode()
    return text if padded else text.rstrip("=")


def api_key_headers(
    creds: dict[str, str],
    method: str,
    path: str,
    body: str = "",
    timestamp: str | None = None,
    **signature_options: bool,
) -> dict[str, str]:
    timestamp = timestamp or now_iso()
    return {
        "DYDX-SIGNATURE": hmac_signature(
            creds["secret"], timestamp + method + path + body, **signature_options
        ),
        "DYDX-API-KEY": creds["key"],
        "DYDX-TIMESTAMP": timestamp,
        "DYDX-PASSPHRASE": creds["passphrase"],
    }


def errors_of(response: requests.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("errors"), list), body
    return list(body["errors"])


def first_msg(response: requests.Response) -> str:
    return str(errors_of(response)[0]["msg"])


def onboard(emulator: EmulatorProcess, wallet: Wallet) -> tuple[Client, dict[str, Any]]:
    """Onboards ``wallet`` through the official client; returns the client and the response data."""
    client = emulator.client(wallet)
    keys = client.onboarding.derive_stark_key()
    data = client.onboarding.create_user(
        stark_public_key=keys["public_key"],
        stark_public_key_y_coordinate=keys["public_key_y_coordinate"],
    ).data
    data["stark"] = keys
    return client, data


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def stark_client(emulator: EmulatorProcess, wallet: Wallet) -> tuple[Client, dict[str, Any]]:
    """Onboards ``wallet`` with its derived STARK key; the client signs with it. Returns the account."""
    client, data = onboard(emulator, wallet)
    client.stark_private_key = data["stark"]["private_key"]
    return client, data["account"]


def fund(rpc_url: str, client: Client, account: dict[str, Any], usdc: str) -> None:
    """Registers the account's STARK key on L1, deposits ``usdc`` and waits until it is credited."""
    stark_key = "0x" + account["starkKey"]
    signature = client.private.get_registration().data["signature"]
    client.eth.wait_for_tx(client.eth.register_user(signature, stark_public_key=stark_key))
    client.eth.wait_for_tx(
        client.eth.set_token_max_allowance(client.eth.get_exchange_contract().address)
    )
    client.eth.wait_for_tx(
        client.eth.deposit_to_exchange(account["positionId"], usdc, stark_public_key=stark_key)
    )
    wait_for(lambda: client.private.get_transfers().data["transfers"])
    mine(rpc_url, 60)
    wait_for(lambda: client.private.get_account().data["account"]["quoteBalance"] != "0")
