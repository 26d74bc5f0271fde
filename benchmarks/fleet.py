"""Many fresh, funded sandbox accounts and a manifest for them, made with batched calls.

Keys are new random keys each run (nothing is cached across runs). Funding is two
JSON-RPC batches: ``anvil_setBalance`` for ETH, and ``anvil_setStorageAt`` on the USDC
stand-in's ``balanceOf`` slots (see ``fund``). The signers' private keys go
to the sandbox Vault (``secret/<prefix>/signers/<address>``), where the manifest's
``private_key: {vault: ...}`` references find them.
"""

from __future__ import annotations

import os
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
from eth_utils import function_signature_to_4byte_selector, keccak

from provisioner.networks import SEPOLIA
from provisioner.sandbox.control import SandboxInfo

MOUNT = "secret"
ETH_WEI = 100 * 10**18
USDC_BASE_UNITS = 1_000_000 * 10**6
_BALANCE_OF = function_signature_to_4byte_selector("balanceOf(address)")
_BATCH = 500


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


_BALANCE_OF_SLOT = 1  # UsdcStandIn.sol: totalSupply in slot 0, balanceOf in slot 1


def fund(rpc_url: str, addresses: Sequence[str], *, usdc: int = USDC_BASE_UNITS) -> None:
    """ETH by ``anvil_setBalance``; USDC by ``anvil_setStorageAt`` on the stand-in's
    ``balanceOf`` slot: no transaction to mine, so 10,000 wallets are funded in seconds
    (10,000 ``setBalance`` transactions were not all mined after 4 minutes). The stand-in's
    ``totalSupply`` is left as it was; nothing the benchmarks measure reads it."""
    rpc_batch(rpc_url, [("anvil_setBalance", [a, hex(ETH_WEI)]) for a in addresses])
    if not usdc:
        return
    value = "0x" + usdc.to_bytes(32, "big").hex()
    rpc_batch(
        rpc_url,
        [
            ("anvil_setStorageAt", [SEPOLIA.usdc_contract, _balance_slot(a), value])
            for a in addresses
        ],
    )
    for address in (addresses[0], addresses[-1]):  # the layout is what the contract reads
        data = "0x" + (_BALANCE_OF + encode(["address"], [address])).hex()
        [held] = rpc_batch(
            rpc_url, [("eth_call", [{"to": SEPOLIA.usdc_contract, "data": data}, "latest"])]
        )
        if int(held, 16) != usdc:
            raise RuntimeError(f"funding {address} by storage gave a balance of {int(held, 16)}")


def _balance_slot(address: str) -> str:
    """The storage slot of ``balanceOf[address]``: keccak256(address . slot), both 32 bytes."""
    return "0x" + keccak(encode(["address", "uint256"], [address, _BALANCE_OF_SLOT])).hex()


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
