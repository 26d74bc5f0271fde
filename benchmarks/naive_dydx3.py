"""The baseline: what a careful person would script with the official dydx3 client, account by account.

For each account of the manifest, in order, it checks what ``provision plan`` checks:
the STARK key and every API key's secret in Vault (hvac), that dYdX knows the user and
lists the stored API keys (``private.get_api_keys``), what dYdX credited as deposits
(``private.get_transfers``), and on chain (dydx3's ``eth`` module over web3): the
STARK key's registration, the wallet's USDC balance and allowance to the exchange and
its ETH balance. It prints one line per account; no secret is printed.

Run: .venv/bin/python -m benchmarks.naive_dydx3 -f MANIFEST   (VAULT_ADDR, VAULT_TOKEN,
ETH_RPC_URL, DYDX_API_URL set, e.g. by ``eval "$(provision sandbox env)"``)
"""

import provisioner  # noqa: F401,I001  (the Python 3.11 import fix must run before dydx3)

import argparse
import os
import sys
import time
from decimal import Decimal
from typing import Any

import hvac
from dydx3 import Client
from dydx3.errors import DydxApiError
from dydx3.modules.eth import Eth
from web3 import Web3
from web3.exceptions import ContractLogicError

from provisioner.manifest.loader import load_manifest


def check_account(
    kv: Any, mount: str, spec: Any, api_url: str, rpc_url: str, chain_id: int, exchange: str
) -> dict[str, Any]:
    stark = _read(kv, mount, spec.stark_key_path)
    api = {key.name: _read(kv, mount, key.secret_path) for key in spec.api_keys}
    row: dict[str, Any] = {"account": spec.name, "stark_key_in_vault": stark is not None}
    default = api.get("default")
    client = Client(
        host=api_url,
        network_id=chain_id,
        web3_provider=rpc_url,
        default_ethereum_address=spec.address,
        api_key_credentials=(
            {k: default[k] for k in ("key", "secret", "passphrase")} if default else None
        ),
    )
    # read-only: dydx3's Eth module without a private key (Client.eth insists on one)
    eth = Eth(client.web3, chain_id, None, spec.address, None, {})
    listed: set[str] = set()
    deposited = Decimal(0)
    if default is not None:
        try:
            listed = {k["key"] for k in client.private.get_api_keys().data["apiKeys"]}
            transfers = client.private.get_transfers(transfer_type="DEPOSIT").data["transfers"]
            deposited = sum(
                (Decimal(t["creditAmount"]) for t in transfers if t["status"] == "CONFIRMED"),
                Decimal(0),
            )
            row["onboarded"] = True
        except DydxApiError:
            row["onboarded"] = client.public.check_if_user_exists(spec.address).data["exists"]
    else:
        row["onboarded"] = client.public.check_if_user_exists(spec.address).data["exists"]
    row["api_keys"] = {
        name: secret is not None and secret.get("key") in listed for name, secret in api.items()
    }
    row["registered"] = False
    if stark is not None:
        try:
            owner = (
                eth.get_exchange_contract().functions.getEthKey(int(stark["public_key"], 16)).call()
            )
            row["registered"] = owner.lower() == spec.address.lower()
        except (ContractLogicError, ValueError):
            row["registered"] = False
    row["usdc_balance"] = eth.get_token_balance(owner=spec.address)
    row["usdc_allowance"] = eth.get_token_allowance(
        spender=Web3.toChecksumAddress(exchange), owner=spec.address
    )
    row["eth_balance"] = eth.get_eth_balance(spec.address)
    row["deposited"] = deposited
    row["target"] = spec.deposit
    return row


def _read(kv: Any, mount: str, path: str) -> dict[str, str] | None:
    try:
        answer = kv.read_secret_version(path=path, mount_point=mount, raise_on_deleted_version=True)
    except hvac.exceptions.InvalidPath:
        return None
    data: dict[str, str] = answer["data"]["data"]
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-f", "--file", required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()  # after the imports: the work alone, reported on stderr
    manifest = load_manifest(args.file)
    network = manifest.network
    kv = hvac.Client(url=manifest.vault.address, token=os.environ["VAULT_TOKEN"]).secrets.kv.v2
    converged = 0
    for spec in manifest.accounts:
        row = check_account(
            kv,
            manifest.vault.mount,
            spec,
            network.api_url,
            network.rpc_url,
            network.chain_id,
            network.exchange_contract,
        )
        done = (
            row["onboarded"]
            and row["registered"]
            and row["stark_key_in_vault"]
            and all(row["api_keys"].values())
            and row["deposited"] >= row["target"]
        )
        converged += bool(done)
        print(f"{row['account']}: {'up to date' if done else 'changes needed'}")
    print(f"{converged} of {len(manifest.accounts)} accounts up to date")
    print(f"work seconds: {time.perf_counter() - started:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
