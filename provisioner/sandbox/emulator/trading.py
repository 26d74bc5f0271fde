"""Orders and withdrawals: what a v3 bot signs with its STARK key, checked the way v3 checked it.

A request is validated field by field, then its StarkEx message is rebuilt and
its signature verified against the account's registered STARK key, then the
account's collateral is checked, and only then are the rules on expiration
applied. That order is the one the official clients' integration tests rely on:
a well-signed request from an unfunded account gets the collateralization error.

The sandbox has no order book and no counterparty: orders never fill. A resting
order holds its initial margin (``size * price * initialMarginFraction``) out of
free collateral until it is canceled or expires; a post-only order priced through
the market's fixed price is canceled as one that would cross; IOC and FOK orders
are canceled at once, unfilled. Withdrawals are debited at once and stay
``PENDING``: there is no StarkEx batch to settle them.
"""

from __future__ import annotations

import uuid
from decimal import ROUND_CEILING, Decimal
from typing import Any

from aiohttp import web

from provisioner.sandbox.emulator import errors, inputs
from provisioner.sandbox.emulator.auth import body_object, normalise_address
from provisioner.sandbox.emulator.callers import account_number, user_of
from provisioner.sandbox.emulator.clock import iso_from_ms, now_iso, now_ms
from provisioner.sandbox.emulator.errors import ApiError, json_response
from provisioner.sandbox.emulator.ids import DYDX_NAMESPACE
from provisioner.sandbox.emulator.markets import MARKETS, Market
from provisioner.sandbox.emulator.runtime import Call
from provisioner.sandbox.emulator.stark_crypto import Point, point_of, verify
from provisioner.sandbox.emulator.stark_messages import (
    COLLATERAL_RESOLUTION,
    NotQuantizable,
    conditional_transfer_hash,
    erc20_fact_condition,
    nonce_from_client_id,
    order_message,
    withdrawal_hash,
)
from provisioner.sandbox.emulator.store import Account, ClientIdInUse, Order, User, Withdrawal
from provisioner.sandbox.emulator.views import balances, order_json, withdrawal_json

SIDES = ("BUY", "SELL")
ORDER_TYPES = ("LIMIT", "MARKET", "STOP_LIMIT", "TAKE_PROFIT", "TRAILING_STOP")
TIMES_IN_FORCE = ("GTT", "FOK", "IOC")
ORDER_STATUSES = ("PENDING", "OPEN", "FILLED", "CANCELED", "UNTRIGGERED")
ACTIVE_STATUSES = ("PENDING", "OPEN", "UNTRIGGERED")
MIN_ORDER_LIFETIME_MS = 60_000
MIN_WITHDRAWAL_LIFETIME_MS = 7 * 24 * 3_600_000
MAX_CLIENT_ID_LENGTH = 100
MAX_FAST_WITHDRAWAL_USDC = Decimal(200_000)


class LiquidityProvider:
    """The sandbox's fast-withdrawal LP: position 2 and the STARK key v3's staging LP used."""

    position_id = 2
    stark_key = "04a9ecd28a67407c3cff8937f329ca24fd631b1d9ca2b9f2df47c7ebf72bf0b0"
    available_funds = Decimal(1_000_000)

    @classmethod
    def point(cls) -> Point:
        point = point_of(int(cls.stark_key, 16))
        assert point is not None
        return point


def _user_and_account(call: Call) -> tuple[User, Account]:
    user = user_of(call)
    account = call.emulator.store.account_by_number(user.address, account_number(call))
    if account is None:
        raise ApiError(404, errors.ACCOUNT_NOT_FOUND)
    return user, account


def _key_point(account: Account) -> Point:
    return int(account.stark_key, 16), int(account.stark_key_y, 16)


def _object_id(kind: str, account: Account, client_id: str) -> str:
    return str(uuid.uuid5(DYDX_NAMESPACE, f"{kind}:{account.id}:{client_id}"))


def _multiple_of(value: Decimal, step: Decimal) -> bool:
    return (value % step) == 0


def _units(amount: Decimal) -> int:
    scaled = amount * COLLATERAL_RESOLUTION
    if scaled != scaled.to_integral_value():
        raise NotQuantizable(str(amount))
    return int(scaled)


# -- orders -------------------------------------------------------------------------------
async def post_order(call: Call) -> web.StreamResponse:
    _, account = _user_and_account(call)
    body = body_object(call.signed)
    market = MARKETS.get(inputs.choice(body, "market", tuple(MARKETS), "body"))
    assert market is not None
    side = inputs.choice(body, "side", SIDES, "body")
    order_type = inputs.choice(body, "type", ORDER_TYPES, "body")
    time_in_force = inputs.choice(body, "timeInForce", TIMES_IN_FORCE, "body", default="GTT")
    post_only = inputs.boolean(body, "postOnly", "body")
    reduce_only = inputs.boolean(body, "reduceOnly", "body", default=False)
    size = inputs.decimal(body, "size", "body")
    price = inputs.decimal(body, "price", "body")
    limit_fee = inputs.decimal(body, "limitFee", "body", positive=False)
    if limit_fee >= 1:
        raise errors.invalid("limitFee", "body", body.get("limitFee"))
    trigger_price = inputs.optional_decimal(body, "triggerPrice", "body")
    trailing_percent = inputs.optional_decimal(body, "trailingPercent", "body")
    if order_type in ("STOP_LIMIT", "TAKE_PROFIT") and trigger_price is None:
        raise errors.invalid("triggerPrice", "body", None)
    if order_type == "TRAILING_STOP" and trailing_percent is None:
        raise errors.invalid("trailingPercent", "body", None)
    expiration_ms = inputs.iso_ms(body, "expiration", "body")
    client_id = inputs.text(body, "clientId", "body", max_length=MAX_CLIENT_ID_LENGTH)
    r, s = inputs.stark_signature(body)
    cancel_id = body.get("cancelId")
    if cancel_id is not None and (not isinstance(cancel_id, str) or len(cancel_id) > 100):
        raise errors.invalid("cancelId", "body", cancel_id)
    if post_only and time_in_force in ("IOC", "FOK"):
        raise ApiError(400, errors.POST_ONLY_TIME_IN_FORCE)
    if order_type == "MARKET" and time_in_force == "GTT":
        raise ApiError(400, errors.MARKET_ORDER_TIME_IN_FORCE)
    _check_sizes(market, size, price)

    emu = call.emulator
    try:
        message = order_message(
            market=market,
            collateral_asset_id=emu.config.network_collateral_asset_id,
            side=side,
            size=size,
            price=price,
            limit_fee=limit_fee,
            position_id=account.position_id,
            client_id=client_id,
            expiration_ms=expiration_ms,
        )
    except NotQuantizable:
        raise errors.invalid("size", "body", body.get("size")) from None
    if not verify(message.hash(), r, s, _key_point(account)):
        raise ApiError(400, errors.INVALID_ORDER_SIGNATURE)

    store = emu.store
    replaced = store.order(cancel_id) if cancel_id else None
    if cancel_id and (replaced is None or replaced.account_id != account.id):
        raise ApiError(404, errors.ORDER_NOT_FOUND)
    margin = _initial_margin(market, size, price)
    freed = replaced.margin_units if replaced and replaced.status in ACTIVE_STATUSES else 0
    if balances(account, store).free + freed - margin < 0:
        raise ApiError(400, errors.ORDER_UNDERCOLLATERALIZED)
    now = now_ms()
    if expiration_ms < now + MIN_ORDER_LIFETIME_MS:
        raise ApiError(400, errors.ORDER_EXPIRATION_TOO_SOON)

    status, cancel_reason = "OPEN", None
    if time_in_force in ("IOC", "FOK"):
        status, cancel_reason = "CANCELED", "COULD_NOT_FILL"
    elif post_only and (price >= market.price if side == "BUY" else price <= market.price):
        status, cancel_reason = "CANCELED", "POST_ONLY_WOULD_CROSS"
    created = iso_from_ms(now)
    order = Order(
        id=_object_id("order", account, client_id),
        account_id=account.id,
        client_id=client_id,
        market=market.market,
        side=side,
        type=order_type,
        size=body["size"],
        remaining_size=body["size"],
        price=body["price"],
        trigger_price=body.get("triggerPrice"),
        trailing_percent=body.get("trailingPercent"),
        limit_fee=body["limitFee"],
        time_in_force=time_in_force,
        post_only=post_only,
        reduce_only=reduce_only,
        status=status,
        cancel_reason=cancel_reason,
        expires_at=iso_from_ms(expiration_ms),
        created_at=created,
        unfillable_at=created if status == "CANCELED" else None,
        margin_units=margin,
    )
    if store.order_by_client_id(account.id, client_id) is not None:
        raise ApiError(409, errors.CLIENT_ID_IN_USE)
    if replaced is not None:
        store.cancel_orders(account.id, None, replaced.id, created)
    try:
        store.add_order(order)
    except ClientIdInUse:
        raise ApiError(409, errors.CLIENT_ID_IN_USE) from None
    # v3 answered a new order as PENDING: it reached the matching engine afterwards
    shown = "PENDING" if status == "OPEN" else status
    return json_response({"order": order_json(order, status=shown)}, status=201)


def _check_sizes(market: Market, size: Decimal, price: Decimal) -> None:
    if size < market.min_order_size:
        raise ApiError(400, errors.ORDER_SIZE_TOO_SMALL)
    if not _multiple_of(size, market.step_size):
        raise ApiError(400, errors.ORDER_SIZE_STEP)
    if not _multiple_of(price, market.tick_size):
        raise ApiError(400, errors.ORDER_PRICE_TICK)


def _initial_margin(market: Market, size: Decimal, price: Decimal) -> int:
    margin = size * price * market.initial_margin_fraction * COLLATERAL_RESOLUTION
    return int(margin.to_integral_value(ROUND_CEILING))


def _owned_order(call: Call, account: Account, order: Order | None) -> Order:
    if order is None or order.account_id != account.id:
        raise ApiError(404, errors.ORDER_NOT_FOUND)
    return order


async def get_orders(call: Call) -> web.StreamResponse:
    _, account = _user_and_account(call)
    query = call.request.query
    filters: dict[str, str] = {}
    for name, allowed in (
        ("market", tuple(MARKETS)),
        ("status", ORDER_STATUSES),
        ("side", SIDES),
        ("type", ORDER_TYPES),
    ):
        value = inputs.optional_choice(query, name, allowed, "query")
        if value is not None:
            filters[name] = value
    limit = inputs.query_limit(query)
    before = None
    if query.get("createdBeforeOrAt") is not None:
        before = iso_from_ms(inputs.iso_ms(query, "createdBeforeOrAt", "query"))
    latest = inputs.choice(query, "returnLatestOrders", ("true", "false"), "query", "false")
    orders = call.emulator.store.orders_of(
        account.id,
        filters=filters,
        created_before_or_at=before,
        limit=limit,
        latest_first=latest == "true",
    )
    return json_response({"orders": [order_json(o) for o in orders]})


async def get_order(call: Call) -> web.StreamResponse:
    _, account = _user_and_account(call)
    order = _owned_order(call, account, call.emulator.store.order(call.request.match_info["id"]))
    return json_response({"order": order_json(order)})


async def get_order_by_client_id(call: Call) -> web.StreamResponse:
    _, account = _user_and_account(call)
    client_id = call.request.match_info["client_id"]
    order = call.emulator.store.order_by_client_id(account.id, client_id)
    return json_response({"order": order_json(_owned_order(call, account, order))})


async def delete_order(call: Call) -> web.StreamResponse:
    _, account = _user_and_account(call)
    store = call.emulator.store
    order = _owned_order(call, account, store.order(call.request.match_info["id"]))
    if order.status == "CANCELED":
        raise ApiError(400, errors.ORDER_ALREADY_CANCELED)
    if order.status == "FILLED":
        raise ApiError(400, errors.ORDER_ALREADY_FILLED)
    (canceled,) = store.cancel_orders(account.id, None, order.id, now_iso())
    return json_response({"cancelOrder": order_json(canceled)})


async def delete_orders(call: Call) -> web.StreamResponse:
    _, account = _user_and_account(call)
    market = inputs.optional_choice(call.request.query, "market", tuple(MARKETS), "query")
    canceled = call.emulator.store.cancel_orders(account.id, market, None, now_iso())
    return json_response({"cancelOrders": [order_json(o) for o in canceled]})


# -- withdrawals --------------------------------------------------------------------------
def _withdrawal_fields(body: dict[str, Any]) -> tuple[int, str, tuple[int, int]]:
    expiration_ms = inputs.iso_ms(body, "expiration", "body")
    client_id = inputs.text(body, "clientId", "body", max_length=MAX_CLIENT_ID_LENGTH)
    return expiration_ms, client_id, inputs.stark_signature(body)


def _record_withdrawal(
    call: Call, user: User, account: Account, withdrawal: Withdrawal, expiration_ms: int
) -> web.StreamResponse:
    """Collateral, then expiration, then the record; 201 with the new transfer."""
    store = call.emulator.store
    if withdrawal.debit_units > balances(account, store).free:
        raise ApiError(400, errors.WITHDRAWAL_UNDERCOLLATERALIZED)
    if expiration_ms < now_ms() + MIN_WITHDRAWAL_LIFETIME_MS:
        raise ApiError(400, errors.WITHDRAWAL_EXPIRATION_TOO_SOON)
    try:
        store.add_withdrawal(withdrawal)
    except ClientIdInUse:
        raise ApiError(409, errors.CLIENT_ID_IN_USE) from None
    return json_response({"withdrawal": withdrawal_json(withdrawal, user.address)}, status=201)


async def post_withdrawal(call: Call) -> web.StreamResponse:
    user, account = _user_and_account(call)
    body = body_object(call.signed)
    amount = inputs.decimal(body, "amount", "body")
    inputs.choice(body, "asset", ("USDC",), "body")
    expiration_ms, client_id, (r, s) = _withdrawal_fields(body)
    try:
        units = _units(amount)
        message = withdrawal_hash(
            collateral_asset_id=call.emulator.config.network_collateral_asset_id,
            position_id=account.position_id,
            amount=amount,
            client_id=client_id,
            expiration_ms=expiration_ms,
        )
    except NotQuantizable:
        raise errors.invalid("amount", "body", body.get("amount")) from None
    if not verify(message, r, s, _key_point(account)):
        raise ApiError(400, errors.INVALID_WITHDRAWAL_SIGNATURE)
    withdrawal = Withdrawal(
        id=_object_id("withdrawal", account, client_id),
        account_id=account.id,
        type="WITHDRAWAL",
        debit_units=units,
        credit_asset="USDC",
        credit_units=units,
        client_id=client_id,
        to_address=user.address,
        lp_position_id=None,
        status="PENDING",
        created_at=now_iso(),
    )
    return _record_withdrawal(call, user, account, withdrawal, expiration_ms)


async def post_fast_withdrawal(call: Call) -> web.StreamResponse:
    user, account = _user_and_account(call)
    body = body_object(call.signed)
    inputs.choice(body, "creditAsset", ("USDC",), "body")
    credit = inputs.decimal(body, "creditAmount", "body")
    debit = inputs.decimal(body, "debitAmount", "body")
    if body.get("slippageTolerance") is not None:
        inputs.decimal(body, "slippageTolerance", "body", positive=False)
    to_address = normalise_address(body.get("toAddress"), "body", "toAddress")
    lp_text = body.get("lpPositionId")
    if str(lp_text) != str(LiquidityProvider.position_id):
        raise errors.invalid("lpPositionId", "body", lp_text)
    expiration_ms, client_id, (r, s) = _withdrawal_fields(body)
    if credit > debit:
        raise ApiError(400, errors.FAST_WITHDRAWAL_CREDIT)
    if debit > MAX_FAST_WITHDRAWAL_USDC:
        raise ApiError(400, errors.FAST_WITHDRAWAL_MAXIMUM)
    config = call.emulator.config
    try:
        debit_units, credit_units = _units(debit), _units(credit)
        condition = erc20_fact_condition(
            fact_registry=config.network_fact_registry_contract,
            recipient=to_address,
            token=config.network_usdc_contract,
            token_amount=credit,
            salt=nonce_from_client_id(client_id),
        )
        message = conditional_transfer_hash(
            collateral_asset_id=config.network_collateral_asset_id,
            sender_position_id=account.position_id,
            receiver_position_id=LiquidityProvider.position_id,
            receiver_public_key=int(LiquidityProvider.stark_key, 16),
            condition=condition,
            amount=debit,
            client_id=client_id,
            expiration_ms=expiration_ms,
        )
    except NotQuantizable:
        raise errors.invalid("debitAmount", "body", body.get("debitAmount")) from None
    if not verify(message, r, s, _key_point(account)):
        raise ApiError(400, errors.INVALID_FAST_WITHDRAWAL_SIGNATURE)
    withdrawal = Withdrawal(
        id=_object_id("fast-withdrawal", account, client_id),
        account_id=account.id,
        type="FAST_WITHDRAWAL",
        debit_units=debit_units,
        credit_asset="USDC",
        credit_units=credit_units,
        client_id=client_id,
        to_address=to_address,
        lp_position_id=LiquidityProvider.position_id,
        status="PENDING",
        created_at=now_iso(),
    )
    return _record_withdrawal(call, user, account, withdrawal, expiration_ms)


async def get_fast_withdrawals(call: Call) -> web.StreamResponse:
    """The LPs a fast withdrawal can go through, with a fee-free quote when amounts are asked."""
    query = call.request.query
    quote = None
    credit_asset = inputs.optional_choice(query, "creditAsset", ("USDC",), "query")
    if credit_asset is not None:
        amount_name = "creditAmount" if query.get("creditAmount") is not None else "debitAmount"
        amount = str(inputs.decimal(query, amount_name, "query"))
        quote = {"creditAsset": credit_asset, "creditAmount": amount, "debitAmount": amount}
    lp = LiquidityProvider
    return json_response(
        {
            "liquidityProviders": {
                str(lp.position_id): {
                    "availableFunds": str(lp.available_funds),
                    "starkKey": lp.stark_key,
                    "quote": quote,
                }
            }
        }
    )
