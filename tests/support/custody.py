"""Helpers for the key-custody tests on the sandbox: signer blocks, the web app's export, checks from Vault.

Accounts are fresh random wallets from ``support.apply_runs`` (funded, isolated Vault
prefixes), except the remote-signer test, which needs a key anvil holds unlocked: dev
account 5 (no other suite sends from it on the session sandbox).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from support.apply_runs import (
    Manifest,
    TestAccount,
    deposited,
    dydx3_client,
    read_secret,
    secret_paths,
    stark_owner,
    write_manifest,
)

from provisioner.networks import SEPOLIA
from provisioner.sandbox.control import SandboxInfo


def write_signer_manifest(
    tmp_path: Path, accounts: list[TestAccount], signers: Mapping[str, dict[str, Any] | None]
) -> Manifest:
    """A manifest like ``write_manifest``'s, with each account's signer block given (None: import-only)."""
    for account in accounts:
        account.signer = False
    m = write_manifest(tmp_path, accounts)
    doc = yaml.safe_load(m.path.read_text())
    for entry in doc["accounts"]:
        block = signers.get(entry["name"])
        rebuilt = {"name": entry.pop("name"), "address": entry.pop("address")}
        if block is not None:
            rebuilt["signer"] = block
        rebuilt.update(entry)
        entry.clear()
        entry.update(rebuilt)
    m.path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return m


def assert_usable_from_vault(
    sandbox: SandboxInfo, m: Manifest, account: TestAccount, deposit_base_units: int
) -> None:
    """dydx3, built from Vault alone, reads the account; the key is registered and the deposit landed."""
    stark_data = _secret(sandbox, m.stark_path(account.name))
    stark_public = int(stark_data["public_key"], 16)
    for key_name in account.api_keys:
        api = _secret(sandbox, m.api_path(account.name, key_name))
        bot = dydx3_client(sandbox, api, stark_data["private_key"])
        assert int(bot.stark_public_key, 16) == stark_public
        [acc] = bot.private.get_accounts().data["accounts"]
        assert int(acc["starkKey"], 16) == stark_public
        assert acc["id"] == stark_data["account_id"]
        assert int(acc["positionId"]) == int(stark_data["position_id"])
        listed = {k["key"] for k in bot.private.get_api_keys().data["apiKeys"]}
        assert api["key"] in listed
    owner = stark_owner(sandbox, account.address, stark_public)
    assert owner is not None and owner.lower() == account.address.lower(), account.name
    assert deposited(sandbox, stark_public, int(stark_data["position_id"])) == deposit_base_units


def _secret(sandbox: SandboxInfo, path: str) -> dict[str, str]:
    rec = read_secret(sandbox, path)
    assert rec is not None, f"nothing at {path}"
    data, meta = rec
    assert meta["custom_metadata"]["managed-by"] == "dydx-provisioner", path
    return data


def vault_values(sandbox: SandboxInfo, prefix: str) -> list[str]:
    """Every data value stored under ``prefix`` (all versions' current data), for leak checks."""
    values: list[str] = []
    for path in secret_paths(sandbox, prefix):
        rec = read_secret(sandbox, path)
        if rec is not None:
            values.extend(v if isinstance(v, str) else json.dumps(v) for v in rec[0].values())
    return values


# -- the web app -----------------------------------------------------------------------------


@dataclass
class WebAppWallet:
    """A wallet onboarded by the official client, the way the web app does it, and what it keeps."""

    address: str
    stark: dict[
        str, str
    ]  # dydx3's derive_stark_key: private_key, public_key, public_key_y_coordinate (0x hex)
    api: dict[str, str]  # key, secret, passphrase
    position_id: int
    client: Any  # dydx3.Client with the Ethereum key: for creating and deleting keys in tests


def onboard_like_the_web_app(sandbox: SandboxInfo, private_key: str) -> WebAppWallet:
    from dydx3 import Client

    client = Client(host=sandbox.api_url, network_id=SEPOLIA.chain_id, eth_private_key=private_key)
    stark = client.onboarding.derive_stark_key()
    created = client.onboarding.create_user(
        stark_public_key=stark["public_key"],
        stark_public_key_y_coordinate=stark["public_key_y_coordinate"],
    ).data
    return WebAppWallet(
        address=client.default_address,
        stark=stark,
        api=dict(created["apiKey"]),
        position_id=int(created["account"]["positionId"]),
        client=client,
    )


def stark_key_pairs(wallet: WebAppWallet, **override: str) -> dict[str, Any]:
    """STARK_KEY_PAIRS as the web app keeps it: lower-case address, 64 hex digits without 0x."""
    address = wallet.address.lower()
    entry = {
        "walletAddress": address,
        "publicKey": f"{int(wallet.stark['public_key'], 16):064x}",
        "publicKeyYCoordinate": f"{int(wallet.stark['public_key_y_coordinate'], 16):064x}",
        "privateKey": f"{int(wallet.stark['private_key'], 16):064x}",
        "legacySigning": False,
        "walletType": "METAMASK",
    }
    entry.update(override)
    return {address: entry}


def api_key_pairs(wallet: WebAppWallet, **override: str) -> dict[str, Any]:
    address = wallet.address.lower()
    entry = {
        "walletAddress": address,
        "key": wallet.api["key"],
        "secret": wallet.api["secret"],
        "passphrase": wallet.api["passphrase"],
        "legacySigning": False,
        "walletType": "METAMASK",
    }
    entry.update(override)
    return {address: entry}


def whole_local_storage(stark: dict[str, Any], api: dict[str, Any]) -> dict[str, str]:
    """``JSON.stringify(localStorage)`` from the browser: every value a string."""
    return {
        "ONBOARDING_STATE": '"DONE"',
        "STARK_KEY_PAIRS": json.dumps(stark),
        "API_KEY_PAIRS": json.dumps(api),
        "HAS_SEEN_DISCLAIMER": "true",
        "SELECTED_MARKET": '"ETH-USD"',
    }


def write_export(path: Path, doc: Any) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    return path


def wallet_secrets(wallet: WebAppWallet) -> list[str]:
    return [wallet.stark["private_key"], wallet.api["secret"], wallet.api["passphrase"]]
