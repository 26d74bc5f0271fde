"""The end of `make demo`: the keys `provision apply` stored in Vault trade.

The official Python client (dydx-v3-python) is built only from one account's two
Vault records (its STARK key and its default API key): it reads the markets and
its account, places a small post-only order far below the market signed with the
STARK key from Vault, sees it accepted, and cancels it. Prints no secret.

Usage: python scripts/trade_proof.py --account mm-alpha  (VAULT_ADDR, VAULT_TOKEN and
DYDX_API_URL from `provision sandbox env`)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from decimal import ROUND_DOWN, Decimal
from typing import Any

import provisioner  # noqa: F401  (the Python 3.11 import fix, before dydx3)

SANDBOX_CHAIN_ID = 11155111
MARKET = "BTC-USD"
CREDIT_WAIT_S = 60.0


def _vault_record(vault: Any, mount: str, path: str) -> dict[str, str]:
    answer = vault.secrets.kv.v2.read_secret_version(
        path=path, mount_point=mount, raise_on_deleted_version=True
    )
    return dict(answer["data"]["data"])


def _step(text: str) -> None:
    print(f"  {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--account", default="mm-alpha", help="the manifest account's name")
    parser.add_argument("--mount", default="secret", help="Vault KV v2 mount")
    parser.add_argument("--stark-path", help="default: dydx/<account>/stark")
    parser.add_argument("--api-path", help="default: dydx/<account>/api/default")
    args = parser.parse_args(argv)

    import hvac
    from dydx3 import Client, DydxApiError

    vault = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
    stark = _vault_record(vault, args.mount, args.stark_path or f"dydx/{args.account}/stark")
    api = _vault_record(vault, args.mount, args.api_path or f"dydx/{args.account}/api/default")
    client = Client(
        host=os.environ["DYDX_API_URL"],
        network_id=SANDBOX_CHAIN_ID,
        api_key_credentials={k: api[k] for k in ("key", "secret", "passphrase")},
        stark_private_key=stark["private_key"],
        default_ethereum_address=stark["ethereum_address"],
    )
    print(f"== {args.account}: trading with the keys from Vault ==")

    market = client.public.get_markets(market=MARKET).data["markets"][MARKET]
    _step(f"{MARKET}: index price {market['indexPrice']}, min order {market['minOrderSize']}")
    size = Decimal(market["minOrderSize"])
    tick = Decimal(market["tickSize"])
    price = (Decimal(market["indexPrice"]) / 2 / tick).to_integral_value(ROUND_DOWN) * tick
    margin = size * price * Decimal(market["initialMarginFraction"])

    deadline = time.monotonic() + CREDIT_WAIT_S
    while True:
        account = client.private.get_account().data["account"]
        if Decimal(account["freeCollateral"]) >= margin or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # the deposit apply made may still wait for its confirmations
    _step(
        f"account {account['id']}: position {account['positionId']}, "
        f"equity {account['equity']}, free collateral {account['freeCollateral']}"
    )

    try:
        placed = client.private.create_order(
            position_id=account["positionId"],
            market=MARKET,
            side="BUY",
            order_type="LIMIT",
            post_only=True,
            size=str(size),
            price=str(price),
            limit_fee="0.0015",
            expiration_epoch_seconds=time.time() + 3600,
        ).data["order"]
    except DydxApiError as exc:
        print(f"error: the order signed with the STARK key from Vault was refused: {exc.msg}")
        return 1
    _step(f"post-only BUY {size} @ {price} signed with the STARK key: {placed['status']}")
    resting = client.private.get_order_by_id(placed["id"]).data["order"]
    _step(f"order {resting['id']}: {resting['status']}")
    client.private.cancel_order(placed["id"])
    final = client.private.get_order_by_id(placed["id"]).data["order"]
    _step(f"cancelled: {final['status']} ({final['cancelReason']})")
    if resting["status"] != "OPEN" or final["status"] != "CANCELED":
        print("error: the order did not rest and cancel as expected")
        return 1
    print("== the keys in Vault trade ==")
    return 0


if __name__ == "__main__":
    sys.exit(main())
