"""Many fresh, funded sandbox accounts and a manifest for them, made with batched calls.

Keys are new random keys each run (nothing is cached across runs). Funding is two
JSON-RPC batches: ``anvil_setBalance`` for ETH, and USDC ``setBalance`` transactions
sent by one impersonated funder with consecutive nonces. The signers' private keys go
to the sandbox Vault (``secret/<prefix>/signers/<address>``), where the manifest's
``private_key: {vault: ...}`` references find them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import requests
import yaml
from eth_abi import encode
from eth_keys import keys
from eth_utils import function_signature_to_4byte_selector

from provisioner.networks import SEPOLIA
from provisioner.sandbox.control import SandboxInfo

MOUNT = "secret"
ETH_WEI = 100 * 10**18
USDC_BASE_UNITS = 1_000_000 * 10**6
_SET_BALANCE = function_signature_to_4byte_selector("setBalance(address,uint256)")
_BATCH = 500
_PER_FUNDER = 500


@dataclass(frozen=True)
class FleetAccount:
    name: str
    address: str
    private_key: str  # 0x hex; only ever written to Vault


@dataclass(frozen=True)
class Fleet:
    prefix: str  # Vault prefix of this fleet: signers, destinations and state live under it
    accounts: tuple[FleetAccount, ...]

    def signer_path(self, account: FleetAccount) -> str:
        return f"{self.prefix}/signers/{account.address}"


def new_fleet(count: int, prefix: str, *, start: int = 0) -> Fleet:
    accounts = []
    for i in range(start, start + count):
        key = keys.PrivateKey(os.urandom(32))
        accounts.append(
            FleetAccount(
                name=f"mm-{i:04d}",
                address=key.public_key.to_checksum_address(),
                private_key="0x" + key.to_bytes().hex(),
            )
        )
    return Fleet(prefix=prefix, accounts=tuple(accounts))


def rpc_batch(rpc_url: str, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
    """Results in call order; raises on any JSON-RPC error."""
    out: list[Any] = []
    for start in range(0, len(calls), _BATCH):
        chunk = calls[start : start + _BATCH]
        body = [
            {"jsonrpc": "2.0", "id": start + i, "method": m, "params": p}
            for i, (m, p) in enumerate(chunk)
        ]
        answer = requests.post(rpc_url, json=body, timeout=60).json()
        by_id = {item["id"]: item for item in answer}
        for i in range(len(chunk)):
            item = by_id[start + i]
            if "error" in item:
                raise RuntimeError(f"{chunk[i][0]}: {item['error']}")
            out.append(item.get("result"))
    return out


def fund(rpc_url: str, addresses: Sequence[str], *, usdc: int = USDC_BASE_UNITS) -> None:
    """ETH by ``anvil_setBalance``; USDC by ``setBalance`` transactions, each impersonated funder
    sending for ``_PER_FUNDER`` addresses with consecutive explicit nonces (anvil's pool takes
    only so many from one sender), then waits until the last one is mined."""
    groups = [addresses[i : i + _PER_FUNDER] for i in range(0, len(addresses), _PER_FUNDER)]
    funders = [keys.PrivateKey(os.urandom(32)).public_key.to_checksum_address() for _ in groups]
    rpc_batch(
        rpc_url,
        [("anvil_setBalance", [a, hex(ETH_WEI)]) for a in [*funders, *addresses]]
        + [("anvil_impersonateAccount", [f]) for f in funders],
    )
    if not usdc:
        return
    sends = []
    for funder, group in zip(funders, groups, strict=True):
        for nonce, address in enumerate(group):  # a new funder: its first nonce is 0
            data = "0x" + (_SET_BALANCE + encode(["address", "uint256"], [address, usdc])).hex()
            tx = {
                "from": funder,
                "to": SEPOLIA.usdc_contract,
                "data": data,
                "gas": hex(100_000),
                "nonce": hex(nonce),
            }
            sends.append(("eth_sendTransaction", [tx]))
    hashes = rpc_batch(rpc_url, sends)
    _wait_mined(rpc_url, hashes, timeout=120.0 + len(hashes) / 50)
    rpc_batch(rpc_url, [("anvil_stopImpersonatingAccount", [f]) for f in funders])


def _wait_mined(rpc_url: str, hashes: Sequence[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(hashes)
    while waiting:
        receipts = rpc_batch(rpc_url, [("eth_getTransactionReceipt", [h]) for h in waiting])
        for receipt in receipts:
            if receipt is not None and int(receipt["status"], 16) != 1:
                raise RuntimeError(f"funding transaction {receipt['transactionHash']} reverted")
        waiting = [h for h, r in zip(waiting, receipts, strict=True) if r is None]
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} funding transactions not mined in {timeout:g}s")
        if waiting:
            time.sleep(0.1)


def store_signers(sandbox: SandboxInfo, fleet: Fleet, *, threads: int = 8) -> None:
    """Each signer's private key into the sandbox Vault, where the manifest points."""
    client = hvac.Client(url=sandbox.vault_addr, token=sandbox.vault_token)
    kv = client.secrets.kv.v2

    def put(account: FleetAccount) -> None:
        kv.create_or_update_secret(
            path=fleet.signer_path(account),
            secret={"private_key": account.private_key, "address": account.address},
            mount_point=MOUNT,
        )

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(put, fleet.accounts))


def prepare(sandbox: SandboxInfo, fleet: Fleet, *, usdc: int = USDC_BASE_UNITS) -> None:
    fund(sandbox.rpc_url, [a.address for a in fleet.accounts], usdc=usdc)
    store_signers(sandbox, fleet)


def write_manifest(
    path: Path,
    fleet: Fleet,
    *,
    deposit: str = "10",
    api_keys: Sequence[str] = ("default",),
    accounts: Sequence[FleetAccount] | None = None,
    rotation: dict[str, str] | None = None,
) -> Path:
    """A manifest for ``accounts`` (default: the whole fleet) with destinations under the prefix.

    Token auth (VAULT_TOKEN), the sandbox network block, one ``defaults`` block so that
    each account is three lines. ``rotation``: ``rotate_after`` / ``rotation_overlap`` for
    every named key, in ``defaults``.
    """
    doc: dict[str, Any] = {
        "version": 1,
        "network": "sandbox",
        "vault": {
            "address": "${VAULT_ADDR}",
            "auth": {"method": "token"},
            "mount": MOUNT,
            "state_path": f"{fleet.prefix}/state",
        },
        "defaults": {
            "deposit": deposit,
            "secrets": {"stark_key": f"{fleet.prefix}/{{name}}/stark"},
            "api_keys": [
                {"name": k, "secret": f"{fleet.prefix}/{{name}}/api/{k}"} for k in api_keys
            ],
            **(rotation or {}),
        },
        "accounts": [
            {
                "name": a.name,
                "address": a.address,
                "signer": {"private_key": {"vault": f"{fleet.signer_path(a)}#private_key"}},
            }
            for a in (fleet.accounts if accounts is None else accounts)
        ],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
