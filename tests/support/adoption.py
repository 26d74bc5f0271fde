"""Helpers for the adoption tests (issue 17): accounts onboarded the web app's way, and the
side effects of one apply, counted where they land, set against what the plan said.

- chain: every transaction the account sent, read from the blocks, decoded with its amount;
- dYdX: the emulator's request counts (``/admin/stats``), writes by route;
- Vault: the current version of every destination, from its metadata.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from support.apply_runs import Manifest, emulator_stats, versions, web3
from support.custody import WebAppWallet, onboard_like_the_web_app
from support.emulator import mine
from web3 import Web3

from provisioner.networks import SEPOLIA
from provisioner.sandbox import chain_setup
from provisioner.sandbox.control import SandboxInfo

USDC_RESOLUTION = 10**6
Tx = tuple[str, int]  # (what it called, its USDC amount in base units; 0 for registerUser)


def onboard_with_dydx3(
    sandbox: SandboxInfo, private_key: str, *, deposit: str | None, register: bool = True
) -> tuple[WebAppWallet, int]:
    """The web app's path with the official client: onboard, register with dYdX's signature,
    approve exactly the deposit and deposit it (dydx3 converts the amount through float), and
    mine past the deposit's confirmations. Returns the wallet and the base units the deposit actually credited."""
    from dydx3 import Client

    wallet = onboard_like_the_web_app(sandbox, private_key)
    client = Client(
        host=sandbox.api_url,
        network_id=SEPOLIA.chain_id,
        eth_private_key=private_key,
        web3_provider=sandbox.rpc_url,
        api_key_credentials=wallet.api,
    )
    stark_public = wallet.stark["public_key"]
    if register:
        signature = client.private.get_registration().data["signature"]
        client.eth.wait_for_tx(client.eth.register_user(signature, stark_public_key=stark_public))
    units = 0
    if deposit is not None:
        units = int(float(deposit) * USDC_RESOLUTION)  # what dydx3 itself will send
        token = client.eth.get_token_contract("USDC", chain_setup.USDC_ADDRESS)
        client.eth.wait_for_tx(
            client.eth.send_eth_transaction(
                method=token.functions.approve(chain_setup.EXCHANGE_ADDRESS, units)
            )
        )
        client.eth.wait_for_tx(
            client.eth.deposit_to_exchange(
                wallet.position_id, deposit, stark_public_key=stark_public
            )
        )
        # onboarded by hand earlier: the deposit is final (money's confirmations, 14 by default)
        mine(sandbox.rpc_url, 20)
    return wallet, units


@dataclass
class Snapshot:
    block: int
    writes: Counter[str]
    vault: dict[str, int | None]


@dataclass
class Effects:
    """What happened between two snapshots, per account (dYdX writes for the whole run)."""

    txs: dict[str, list[Tx]] = field(default_factory=dict)  # account name -> its transactions
    dydx_writes: Counter[str] = field(default_factory=Counter)  # "POST /v3/onboarding" -> n
    vault: dict[str, int] = field(default_factory=dict)  # destination -> versions added


def snapshot(sandbox: SandboxInfo, m: Manifest) -> Snapshot:
    return Snapshot(
        block=web3(sandbox).eth.block_number,
        writes=_writes(sandbox),
        vault=versions(sandbox, m.destinations()),
    )


def effects_since(sandbox: SandboxInfo, m: Manifest, before: Snapshot) -> Effects:
    after = snapshot(sandbox, m)
    w3 = web3(sandbox)
    exchange, usdc = chain_setup.exchange_contract(w3), chain_setup.usdc_contract(w3)
    senders = {Web3.toChecksumAddress(a.address): a.name for a in m.accounts}
    txs: dict[str, list[Tx]] = {a.name: [] for a in m.accounts}
    for number in range(before.block + 1, after.block + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            name = senders.get(Web3.toChecksumAddress(tx["from"]))
            if name is not None:
                txs[name].append(_decode(tx, exchange, usdc))
    vault = {
        path: (after.vault[path] or 0) - (before.vault[path] or 0)
        for path in after.vault
        if (after.vault[path] or 0) != (before.vault[path] or 0)
    }
    writes = after.writes - before.writes
    return Effects(txs=txs, dydx_writes=writes, vault=vault)


def _writes(sandbox: SandboxInfo) -> Counter[str]:
    requests = emulator_stats(sandbox)["requests"]
    return Counter({r: n for r, n in requests.items() if not r.startswith(("GET ", "HEAD "))})


def _decode(tx: Mapping[str, Any], exchange: Any, usdc: Any) -> Tx:
    to = Web3.toChecksumAddress(tx["to"])
    contract = exchange if to == chain_setup.EXCHANGE_ADDRESS else usdc
    fn, args = contract.decode_function_input(tx["input"])
    if fn.fn_name == "approve":
        return ("approve", int(args["value"]))
    if fn.fn_name == "deposit":
        return ("deposit", int(args["quantizedAmount"]))
    return (fn.fn_name, 0)


def expected_from_plan(plan: Mapping[str, Any], m: Manifest) -> Effects:
    """The side effects the plan's runnable steps stand for, each step its own."""
    out = Effects(txs={a.name: [] for a in m.accounts})
    for account in plan["accounts"]:
        name = account["name"]
        for step in account["steps"]:
            if step["blocked"]:
                continue
            kind, params = step["kind"], step["params"]
            if kind == "stark_key" or kind == "record_account":
                _bump(out, m.stark_path(name))
            elif kind == "onboard":
                out.dydx_writes["POST /v3/onboarding"] += 1
                _bump(out, m.stark_path(name))  # the position recorded
            elif kind == "register":
                out.txs[name].append(("registerUser", 0))
            elif kind in ("approve", "deposit"):
                out.txs[name].append((kind, int(params["amount"])))
            elif kind in ("api_key", "replace_api_key"):
                if params["name"] != "default":  # the default key is recovered, not created
                    out.dydx_writes["POST /v3/api-keys"] += 1
                _bump(out, params["path"])
            elif kind == "delete_api_key":
                out.dydx_writes["DELETE /v3/api-keys"] += 1
    return out


def _bump(effects: Effects, path: str) -> None:
    effects.vault[path] = effects.vault.get(path, 0) + 1


def by_account(effects: Effects, m: Manifest, name: str) -> tuple[list[Tx], dict[str, int]]:
    """One account's transactions and Vault versions added."""
    mine = [m.stark_path(name)] + [m.api_path(name, k) for k in m.account(name).api_keys]
    return effects.txs.get(name, []), {p: n for p, n in effects.vault.items() if p in mine}


def step_kinds(plan: Mapping[str, Any], name: str) -> list[str]:
    [account] = [a for a in plan["accounts"] if a["name"] == name]
    return [s["id"].split("/", 1)[1] for s in account["steps"]]


def amounts(plan: Mapping[str, Any], name: str) -> dict[str, int]:
    [account] = [a for a in plan["accounts"] if a["name"] == name]
    return {
        s["kind"]: int(s["params"]["amount"])
        for s in account["steps"]
        if s["kind"] in ("approve", "deposit")
    }


def names(accounts: Sequence[Any]) -> list[str]:
    return [a.name for a in accounts]
