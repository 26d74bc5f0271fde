"""The account surface past onboarding, judged by the official Python client (dydx-v3-python 2.1.0).

Markets, users, accounts, positions, orders and withdrawals, with STARK signatures
made by the client's own signing code and checked by the emulator: a wrong key is
refused as dYdX refused it, a well-signed request the collateral cannot carry gets
v3's collateralization error, and a funded account's small post-only order far
from the market rests and can be cancelled.
"""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import time
from typing import Any

import pytest
from dydx3 import DydxApiError, epoch_seconds_to_iso
from dydx3.constants import (
    ASSET_USDC,
    COLLATERAL_ASSET_ID_BY_NETWORK_ID,
    MARKET_BTC_USD,
    ORDER_SIDE_BUY,
    ORDER_TYPE_LIMIT,
)
from dydx3.starkex.helpers import private_key_to_public_key_pair_hex
from support.emulator import CHAIN_ID, EmulatorProcess, fresh_wallet, fund, stark_client

from provisioner.sandbox.emulator import errors

pytestmark = pytest.mark.sandbox

SEVEN_DAYS_S = 7 * 24 * 3600
OTHER_STARK_KEY = "0x3c1e9550e66958296d11b60f8e8e7a7ad990d07fa65d5f7652c4a6c86d4cc0b"


def _refusal(call: Any) -> tuple[int, str]:
    with pytest.raises(DydxApiError) as caught:
        call()
    return caught.value.status_code, caught.value.msg["errors"][0]["msg"]


def _order(client: Any, account: dict[str, Any], **overrides: Any) -> Any:
    params: dict[str, Any] = {
        "position_id": account["positionId"],
        "market": MARKET_BTC_USD,
        "side": ORDER_SIDE_BUY,
        "order_type": ORDER_TYPE_LIMIT,
        "post_only": True,
        "size": "0.001",
        "price": "1000",
        "limit_fee": "0.0015",
        "expiration_epoch_seconds": time.time() + 3600,
    }
    params.update(overrides)
    return client.private.create_order(**params)


def _withdrawal(client: Any, account: dict[str, Any], amount: str, **overrides: Any) -> Any:
    params: dict[str, Any] = {
        "position_id": account["positionId"],
        "amount": amount,
        "asset": ASSET_USDC,
        "to_address": client.default_address,
        "expiration_epoch_seconds": time.time() + SEVEN_DAYS_S + 60,
    }
    params.update(overrides)
    return client.private.create_withdrawal(**params)


def _fast_withdrawal(client: Any, account: dict[str, Any], amount: str, **overrides: Any) -> Any:
    (lp_position, lp), *_ = client.public.get_fast_withdrawal().data["liquidityProviders"].items()
    params: dict[str, Any] = {
        "position_id": account["positionId"],
        "credit_asset": "USDC",
        "credit_amount": amount,
        "debit_amount": amount,
        "to_address": client.default_address,
        "lp_position_id": lp_position,
        "lp_stark_public_key": lp["starkKey"],
        "expiration_epoch_seconds": time.time() + SEVEN_DAYS_S + 60,
    }
    params.update(overrides)
    return client.private.create_fast_withdrawal(**params)


def test_markets_users_accounts_and_unfunded_signed_requests(emulator: EmulatorProcess) -> None:
    client, account = stark_client(emulator, fresh_wallet(emulator.rpc_url))

    markets = client.public.get_markets().data["markets"]
    btc = markets["BTC-USD"]
    assert btc["status"] == "ONLINE" and btc["type"] == "PERPETUAL"
    assert (btc["stepSize"], btc["tickSize"], btc["minOrderSize"]) == ("0.0001", "1", "0.001")
    assert btc["syntheticAssetId"] == "0x4254432d3130000000000000000000"
    assert list(client.public.get_markets(market="ETH-USD").data["markets"]) == ["ETH-USD"]
    config = client.public.get_config().data
    assert config["placeOrderRateLimiting"]["maxPoints"] == 1750
    assert int(config["collateralAssetId"], 16) == COLLATERAL_ASSET_ID_BY_NETWORK_ID[CHAIN_ID]

    user = client.private.update_user(username="mm_desk_1", email="desk@example.com").data["user"]
    assert user["username"] == "mm_desk_1" and user["email"] == "desk@example.com"
    assert user["userData"] == {}  # the client always sends userData '{}'
    assert client.private.get_user().data["user"] == user

    # a second account under the same user, with its own STARK key
    x, y = private_key_to_public_key_pair_hex("0x1234567")
    second = client.private.create_account(x, y).data["account"]
    assert second["accountNumber"] == "1" and int(second["starkKey"], 16) == int(x, 16)
    assert second["positionId"] != account["positionId"]
    listed = client.private.get_accounts().data["accounts"]
    assert [a["accountNumber"] for a in listed] == ["0", "1"]
    assert _refusal(lambda: client.private.create_account(x, y)) == (409, errors.STARK_KEY_IN_USE)
    assert client.private.get_positions(market="BTC-USD").data == {"positions": []}

    # well signed, unfunded: the collateralization errors of v3 (as its integration tests expect)
    assert _refusal(lambda: _withdrawal(client, account, "1")) == (
        400,
        "Withdrawal would put account under collateralization minumum",
    )
    short_lived = {"expiration_epoch_seconds": time.time() + 60}
    assert _refusal(lambda: _withdrawal(client, account, "1", **short_lived))[1] == (
        errors.WITHDRAWAL_UNDERCOLLATERALIZED
    )
    assert _refusal(lambda: _order(client, account, size="10", post_only=False)) == (
        400,
        errors.ORDER_UNDERCOLLATERALIZED,
    )
    assert _refusal(lambda: _fast_withdrawal(client, account, "2")) == (
        400,
        errors.WITHDRAWAL_UNDERCOLLATERALIZED,
    )

    # signed with another STARK key: refused as dYdX refused it
    client.private.stark_private_key = OTHER_STARK_KEY
    assert _refusal(lambda: _order(client, account)) == (400, "Invalid signature for order")
    assert _refusal(lambda: _withdrawal(client, account, "1")) == (
        400,
        errors.INVALID_WITHDRAWAL_SIGNATURE,
    )
    assert _refusal(lambda: _fast_withdrawal(client, account, "2")) == (
        400,
        errors.INVALID_FAST_WITHDRAWAL_SIGNATURE,
    )
    assert client.private.get_orders().data == {"orders": []}  # nothing refused was kept


def test_funded_post_only_order_rests_and_cancels_and_withdrawals_debit(
    emulator: EmulatorProcess,
) -> None:
    wallet = fresh_wallet(emulator.rpc_url, usdc_units=1_000 * 10**6)
    client, account = stark_client(emulator, wallet)
    fund(emulator.rpc_url, client, account, "100")
    assert client.private.get_account().data["account"]["freeCollateral"] == "100"

    placed = _order(client, account, client_id="far-bid-1").data["order"]
    assert placed["status"] == "PENDING" and placed["market"] == "BTC-USD"
    assert placed["postOnly"] is True and placed["remainingSize"] == "0.001"
    order = client.private.get_order_by_id(placed["id"]).data["order"]
    assert order["status"] == "OPEN" and order["clientId"] == "far-bid-1"
    assert client.private.get_order_by_client_id("far-bid-1").data["order"] == order
    assert client.private.get_orders(market="BTC-USD", status="OPEN").data == {"orders": [order]}
    # 0.001 BTC at 1000 holds 5% initial margin: 0.05 USDC
    held = client.private.get_account().data["account"]
    assert held["freeCollateral"] == "99.95" and held["equity"] == "100"

    canceled = client.private.cancel_order(placed["id"]).data["cancelOrder"]
    assert canceled["status"] == "CANCELED" and canceled["cancelReason"] == "USER_CANCELED"
    assert _refusal(lambda: client.private.cancel_order(placed["id"])) == (
        400,
        errors.ORDER_ALREADY_CANCELED,
    )
    assert client.private.get_account().data["account"]["freeCollateral"] == "100"
    assert client.private.get_orders(market="BTC-USD", status="OPEN").data == {"orders": []}

    # cancel-all, one market at a time
    second = _order(client, account, client_id="far-bid-2").data["order"]
    cancel_all = client.private.cancel_all_orders(market="BTC-USD").data["cancelOrders"]
    assert [o["id"] for o in cancel_all] == [second["id"]]
    assert client.private.cancel_all_orders().data == {"cancelOrders": []}

    # the rules v3 applied to a well-signed order
    assert _refusal(lambda: _order(client, account, client_id="far-bid-1")) == (
        409,
        errors.CLIENT_ID_IN_USE,
    )
    soon = {"expiration_epoch_seconds": time.time() + 30}
    assert _refusal(lambda: _order(client, account, **soon)) == (
        400,
        "Order expiration cannot be less than 1 minute(s) in the future",
    )
    assert _refusal(lambda: _order(client, account, size="0.0001"))[1] == (
        errors.ORDER_SIZE_TOO_SMALL
    )
    assert _refusal(lambda: _order(client, account, price="1000.5"))[1] == errors.ORDER_PRICE_TICK
    crossing = _order(client, account, price="31000").data["order"]
    assert (crossing["status"], crossing["cancelReason"]) == ("CANCELED", "POST_ONLY_WOULD_CROSS")

    # withdrawals: debited at once, listed as transfers, pending (no StarkEx batch settles them)
    slow = _withdrawal(client, account, "10").data["withdrawal"]
    assert (slow["type"], slow["status"], slow["debitAmount"]) == ("WITHDRAWAL", "PENDING", "10")
    fast = _fast_withdrawal(client, account, "5").data["withdrawal"]
    assert fast["type"] == "FAST_WITHDRAWAL" and fast["toAddress"] == wallet.address.lower()
    kinds = [t["type"] for t in client.private.get_transfers().data["transfers"]]
    assert sorted(kinds) == ["DEPOSIT", "FAST_WITHDRAWAL", "WITHDRAWAL"]
    assert len(client.private.get_transfers(transfer_type="WITHDRAWAL").data["transfers"]) == 1
    after = client.private.get_account().data["account"]
    assert after["quoteBalance"] == "85" and after["pendingWithdrawals"] == "15"
    short = {
        "expiration": epoch_seconds_to_iso(time.time() + 3600),
        "expiration_epoch_seconds": None,
    }
    assert _refusal(lambda: _withdrawal(client, account, "1", **short)) == (
        400,
        errors.WITHDRAWAL_EXPIRATION_TOO_SOON,
    )
    assert _refusal(lambda: _withdrawal(client, account, "86"))[1] == (
        errors.WITHDRAWAL_UNDERCOLLATERALIZED
    )
