"""The v3 endpoints, with v3's fields and statuses; orders and withdrawals live in trading.py."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from provisioner.sandbox.dev_accounts import sign_registration
from provisioner.sandbox.emulator import errors, inputs, trading
from provisioner.sandbox.emulator.auth import body_object, normalise_address
from provisioner.sandbox.emulator.callers import account_number, user_of
from provisioner.sandbox.emulator.clock import iso_from_ms, now_iso, now_ms, parse_iso_ms
from provisioner.sandbox.emulator.credentials import default_api_key, random_api_key
from provisioner.sandbox.emulator.errors import ApiError, json_response
from provisioner.sandbox.emulator.ids import account_id
from provisioner.sandbox.emulator.markets import MARKETS
from provisioner.sandbox.emulator.rate_limit import (
    CANCEL_ALL_ORDERS_LIMIT,
    CANCEL_ORDER_LIMIT,
    MAX_ORDER_CONSUMPTION,
    MIN_LIMIT_CONSUMPTION,
    MIN_MARKET_CONSUMPTION,
    MIN_TRIGGERABLE_CONSUMPTION,
    ORDER_TARGET_NOTIONAL,
    PLACE_ORDER_LIMIT,
    Charge,
    order_cost,
)
from provisioner.sandbox.emulator.rpc import RpcError
from provisioner.sandbox.emulator.runtime import Auth, Call, Endpoint
from provisioner.sandbox.emulator.stark_keys import canonical, is_on_curve, parse_field_element
from provisioner.sandbox.emulator.store import (
    ApiKeyMissing,
    LastApiKey,
    Profile,
    StarkKeyInUse,
    TooManyApiKeys,
    UserExists,
    UsernameTaken,
)
from provisioner.sandbox.emulator.views import (
    MAKER_FEE_RATE,
    TAKER_FEE_RATE,
    account_json,
    transfer_json,
    user_json,
    withdrawal_json,
)

TRANSFER_TYPES = ("DEPOSIT", "WITHDRAWAL", "FAST_WITHDRAWAL", "TRANSFER_OUT", "TRANSFER_IN")
MAX_TRANSFERS = 100
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_SMALL_INT = re.compile(r"^[0-9]{1,9}$")


# -- public ------------------------------------------------------------------------------
async def get_time(call: Call) -> web.StreamResponse:
    ms = now_ms()
    return json_response({"iso": iso_from_ms(ms), "epoch": ms / 1000})


async def get_user_exists(call: Call) -> web.StreamResponse:
    address = normalise_address(
        call.request.query.get("ethereumAddress"), "query", "ethereumAddress"
    )
    exists = call.emulator.store.user(address) is not None
    return json_response({"exists": exists, "contractAddress": "", "isProxySigner": False})


# -- onboarding --------------------------------------------------------------------------
def _optional_text(
    body: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None
) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > 200
        or (pattern is not None and not pattern.match(value))
    ):
        raise errors.invalid(name, "body", value)
    return value


def _stark_key(body: dict[str, Any]) -> tuple[int, int]:
    x = parse_field_element(body.get("starkKey"))
    if x is None:
        raise errors.invalid("starkKey", "body", body.get("starkKey"))
    y = parse_field_element(body.get("starkKeyYCoordinate"))
    if y is None or not is_on_curve(x, y):
        raise errors.invalid("starkKeyYCoordinate", "body", body.get("starkKeyYCoordinate"))
    return x, y


async def _check_wallet_history(call: Call, address: str) -> None:
    emu = call.emulator
    try:
        if await emu.rpc.transaction_count(address) > 0 or await emu.rpc.balance(address) > 0:
            return
        if await emu.rpc.erc20_balance(emu.config.network_usdc_contract, address) > 0:
            return
    except RpcError:
        raise ApiError(503, errors.CHAIN_UNAVAILABLE) from None
    raise ApiError(400, errors.NO_WALLET_HISTORY)


async def post_onboarding(call: Call) -> web.StreamResponse:
    assert call.address is not None and call.onboarding_signature is not None
    body = body_object(call.signed)
    x, y = _stark_key(body)
    referred_by = _optional_text(body, "referredByAffiliateLink")
    country = _optional_text(body, "country", _COUNTRY)
    emu = call.emulator
    if emu.config.require_wallet_history:
        await _check_wallet_history(call, call.address)
    creds = default_api_key(call.onboarding_signature)
    try:
        user, account = emu.store.onboard(
            address=call.address,
            account_id=account_id(call.address, 0),
            stark_key=canonical(x),
            stark_key_y=canonical(y),
            api_key=creds,
            referred_by=referred_by,
            country=country,
            now=now_iso(),
        )
    except UserExists:
        raise ApiError(409, errors.USER_EXISTS) from None
    except StarkKeyInUse:
        raise ApiError(409, errors.STARK_KEY_IN_USE) from None
    return json_response(
        {
            "apiKey": creds.as_json(),
            "user": user_json(user, emu.store),
            "account": account_json(account, emu.store),
        },
        status=201,
    )


# -- API keys ----------------------------------------------------------------------------
async def get_api_keys(call: Call) -> web.StreamResponse:
    user = user_of(call)
    keys = call.emulator.store.api_keys_of(user.address)
    return json_response({"apiKeys": [{"key": key} for key in keys]})


async def post_api_key(call: Call) -> web.StreamResponse:
    user = user_of(call)
    creds = random_api_key()
    try:
        call.emulator.store.add_api_key(user.address, creds, now_iso())
    except TooManyApiKeys:
        raise ApiError(400, errors.TOO_MANY_API_KEYS) from None
    return json_response({"apiKey": creds.as_json()}, status=201)


async def delete_api_key(call: Call) -> web.StreamResponse:
    key = call.request.query.get("apiKey")
    if not key or len(key) > 100:
        raise errors.invalid("apiKey", "query", key)
    user = user_of(call)
    try:
        call.emulator.store.delete_api_key(user.address, key)
    except ApiKeyMissing:
        raise ApiError(404, errors.API_KEY_NOT_FOUND) from None
    except LastApiKey:
        raise ApiError(400, errors.LAST_API_KEY) from None
    return json_response({"apiKey": key})


# -- user, registration, accounts, transfers ---------------------------------------------
async def get_users(call: Call) -> web.StreamResponse:
    return json_response({"user": user_json(user_of(call), call.emulator.store)})


async def get_registration(call: Call) -> web.StreamResponse:
    """The sandbox operator's (user admin's) signature for L1 ``registerUser`` of the account's STARK key."""
    user = user_of(call)
    account = call.emulator.store.account_by_number(user.address, account_number(call))
    if account is None:
        raise ApiError(404, errors.ACCOUNT_NOT_FOUND)
    return json_response({"signature": sign_registration(user.address, int(account.stark_key, 16))})


async def get_accounts(call: Call) -> web.StreamResponse:
    store = call.emulator.store
    accounts = store.accounts_of(user_of(call).address)
    return json_response({"accounts": [account_json(a, store) for a in accounts]})


async def get_account(call: Call) -> web.StreamResponse:
    wanted = call.request.match_info["id"]
    if not _UUID.match(wanted):
        raise errors.invalid("id", "params", wanted)
    store = call.emulator.store
    account = store.account(wanted)
    if account is None or account.address != user_of(call).address:
        raise ApiError(404, errors.ACCOUNT_NOT_FOUND)
    return json_response({"account": account_json(account, store)})


async def get_transfers(call: Call) -> web.StreamResponse:
    query = call.request.query
    transfer_type = query.get("type", query.get("transferType"))
    if transfer_type is not None and transfer_type not in TRANSFER_TYPES:
        raise errors.invalid("type", "query", transfer_type)
    limit_text = query.get("limit")
    limit = MAX_TRANSFERS
    if limit_text is not None:
        if not _SMALL_INT.match(limit_text) or not 1 <= int(limit_text) <= MAX_TRANSFERS:
            raise errors.invalid("limit", "query", limit_text)
        limit = int(limit_text)
    before_text = query.get("createdBeforeOrAt")
    before: str | None = None
    if before_text is not None:
        try:
            before = iso_from_ms(parse_iso_ms(before_text))
        except (ValueError, OverflowError, OSError):
            raise errors.invalid("createdBeforeOrAt", "query", before_text) from None
    user = user_of(call)
    store = call.emulator.store
    shown: list[dict[str, Any]] = []
    if transfer_type in (None, "DEPOSIT"):
        shown += [transfer_json(d) for d in store.deposits_of_user(user.address, before, limit)]
    kinds = ("WITHDRAWAL", "FAST_WITHDRAWAL")
    if transfer_type is None or transfer_type in kinds:
        wanted = kinds if transfer_type is None else (transfer_type,)
        withdrawals = store.withdrawals_of_user(user.address, wanted, before, limit)
        shown += [withdrawal_json(w, user.address) for w in withdrawals]
    shown.sort(key=lambda t: t["createdAt"], reverse=True)
    return json_response({"transfers": shown[:limit]})


async def get_recovery(call: Call) -> web.StreamResponse:
    store = call.emulator.store
    account = store.account_by_number(user_of(call).address, 0)
    if account is None:
        raise ApiError(404, errors.ACCOUNT_NOT_FOUND)
    shown = account_json(account, store)
    return json_response(
        {
            "starkKey": shown["starkKey"],
            "positionId": shown["positionId"],
            "equity": shown["equity"],
            "freeCollateral": shown["freeCollateral"],
            "quoteBalance": shown["quoteBalance"],
            "positions": [],
        }
    )


# -- markets, config ---------------------------------------------------------------------
async def get_markets(call: Call) -> web.StreamResponse:
    wanted = inputs.optional_choice(call.request.query, "market", tuple(MARKETS), "query")
    now = now_ms()
    shown = {m.market: m.as_json(now) for m in MARKETS.values() if wanted in (None, m.market)}
    return json_response({"markets": shown})


async def get_config(call: Call) -> web.StreamResponse:
    config = call.emulator.config
    return json_response(
        {
            "collateralAssetId": hex(config.network_collateral_asset_id),
            "collateralTokenAddress": config.network_usdc_contract,
            "defaultMakerFee": MAKER_FEE_RATE,
            "defaultTakerFee": TAKER_FEE_RATE,
            "exchangeAddress": config.network_exchange_contract,
            "maxExpectedBatchLengthMinutes": "720",
            "maxFastWithdrawalAmount": str(trading.MAX_FAST_WITHDRAWAL_USDC),
            "cancelOrderRateLimiting": {
                "maxPointsMulti": CANCEL_ALL_ORDERS_LIMIT.points,
                "maxPointsSingle": CANCEL_ORDER_LIMIT.points,
                "windowSecMs": CANCEL_ALL_ORDERS_LIMIT.window_ms,
                "windowSingleSecMs": CANCEL_ORDER_LIMIT.window_ms,
            },
            "placeOrderRateLimiting": {
                "maxPoints": PLACE_ORDER_LIMIT.points,
                "windowSecMs": PLACE_ORDER_LIMIT.window_ms,
                "targetNotional": str(ORDER_TARGET_NOTIONAL),
                "minLimitConsumption": MIN_LIMIT_CONSUMPTION,
                "minMarketConsumption": MIN_MARKET_CONSUMPTION,
                "minTriggerableConsumption": MIN_TRIGGERABLE_CONSUMPTION,
                "maxOrderConsumption": MAX_ORDER_CONSUMPTION,
            },
        }
    )


# -- users, accounts, positions ----------------------------------------------------------
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_LANGUAGE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")


def _user_data(body: dict[str, Any]) -> str | None:
    """``userData``: both clients send a JSON-encoded object; a bare object is taken too."""
    value = body.get("userData")
    if value is None:
        return None
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise errors.invalid("userData", "body", value) from None
    if not isinstance(parsed, dict) or len(json.dumps(parsed)) > 10_000:
        raise errors.invalid("userData", "body", value)
    return json.dumps(parsed, separators=(",", ":"))


async def put_users(call: Call) -> web.StreamResponse:
    """Changes the profile fields present in the body; absent (or null) ones keep their value."""
    user = user_of(call)
    body = body_object(call.signed)
    store = call.emulator.store
    old = store.profile(user.address)
    email = _optional_text(body, "email", _EMAIL)
    username = _optional_text(body, "username", _USERNAME)
    language = _optional_text(body, "languageCode", _LANGUAGE)
    country = _optional_text(body, "country", _COUNTRY)
    sharing = {}
    for name in ("isSharingUsername", "isSharingAddress"):
        if body.get(name) is not None:
            sharing[name] = inputs.boolean(body, name, "body")
    user_data = _user_data(body)
    profile = Profile(
        email=email if email is not None else old.email,
        username=username if username is not None else old.username,
        user_data=user_data if user_data is not None else old.user_data,
        is_sharing_username=sharing.get("isSharingUsername", old.is_sharing_username),
        is_sharing_address=sharing.get("isSharingAddress", old.is_sharing_address),
        language_code=language if language is not None else old.language_code,
    )
    try:
        store.save_profile(user.address, profile, country if country is not None else user.country)
    except UsernameTaken:
        raise ApiError(409, errors.USERNAME_TAKEN) from None
    updated = store.user(user.address)
    assert updated is not None
    return json_response({"user": user_json(updated, store)})


async def post_accounts(call: Call) -> web.StreamResponse:
    user = user_of(call)
    x, y = _stark_key(body_object(call.signed))
    store = call.emulator.store
    try:
        account = store.add_account(
            address=user.address,
            account_id_of=lambda number: account_id(user.address, number),
            stark_key=canonical(x),
            stark_key_y=canonical(y),
            now=now_iso(),
        )
    except StarkKeyInUse:
        raise ApiError(409, errors.STARK_KEY_IN_USE) from None
    return json_response({"account": account_json(account, store)}, status=201)


async def get_positions(call: Call) -> web.StreamResponse:
    """Always empty: the sandbox never fills an order, so no account ever holds a position."""
    query = call.request.query
    inputs.optional_choice(query, "market", tuple(MARKETS), "query")
    inputs.optional_choice(query, "status", ("OPEN", "CLOSED", "LIQUIDATED"), "query")
    inputs.query_limit(query)
    if query.get("createdBeforeOrAt") is not None:
        inputs.iso_ms(query, "createdBeforeOrAt", "query")
    user_of(call)
    return json_response({"positions": []})


async def get_fills(call: Call) -> web.StreamResponse:
    inputs.optional_choice(call.request.query, "market", tuple(MARKETS), "query")
    user_of(call)
    return json_response({"fills": []})


async def get_funding(call: Call) -> web.StreamResponse:
    inputs.optional_choice(call.request.query, "market", tuple(MARKETS), "query")
    user_of(call)
    return json_response({"fundingPayments": []})


# -- rate limits of the order endpoints ----------------------------------------------------
def _place_order_charge(call: Call) -> Charge:
    body = call.signed.body_json
    market = body.get("market") if isinstance(body, dict) else None
    known = market if isinstance(market, str) and market in MARKETS else "?"  # no made-up windows
    return Charge(f"orders:{known}", PLACE_ORDER_LIMIT, order_cost(body))


def _cancel_order_charge(call: Call) -> Charge:
    order = call.emulator.store.order(call.request.match_info.get("id", ""))
    return Charge(f"cancel:{order.market if order else '?'}", CANCEL_ORDER_LIMIT)


def _cancel_all_charge(call: Call) -> Charge:
    return Charge("cancel-all", CANCEL_ALL_ORDERS_LIMIT)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/v3/time", Auth.PUBLIC, get_time),
    Endpoint("GET", "/v3/users/exists", Auth.PUBLIC, get_user_exists),
    Endpoint("POST", "/v3/onboarding", Auth.ONBOARDING, post_onboarding),
    Endpoint("GET", "/v3/users", Auth.API_KEY, get_users),
    Endpoint("GET", "/v3/registration", Auth.API_KEY, get_registration),
    Endpoint("GET", "/v3/api-keys", Auth.API_KEY, get_api_keys),
    Endpoint("POST", "/v3/api-keys", Auth.ETH_KEY, post_api_key),
    Endpoint("DELETE", "/v3/api-keys", Auth.ETH_KEY, delete_api_key),
    Endpoint("GET", "/v3/accounts", Auth.API_KEY, get_accounts),
    Endpoint("GET", "/v3/accounts/{id}", Auth.API_KEY, get_account),
    Endpoint("GET", "/v3/transfers", Auth.API_KEY, get_transfers),
    Endpoint("GET", "/v3/recovery", Auth.ETH_KEY, get_recovery),
    Endpoint("GET", "/v3/markets", Auth.PUBLIC, get_markets),
    Endpoint("GET", "/v3/config", Auth.PUBLIC, get_config),
    Endpoint("GET", "/v3/fast-withdrawals", Auth.PUBLIC, trading.get_fast_withdrawals),
    Endpoint("PUT", "/v3/users", Auth.API_KEY, put_users),
    Endpoint("POST", "/v3/accounts", Auth.API_KEY, post_accounts),
    Endpoint("GET", "/v3/positions", Auth.API_KEY, get_positions),
    Endpoint("GET", "/v3/fills", Auth.API_KEY, get_fills),
    Endpoint("GET", "/v3/funding", Auth.API_KEY, get_funding),
    Endpoint("GET", "/v3/orders", Auth.API_KEY, trading.get_orders),
    Endpoint("POST", "/v3/orders", Auth.API_KEY, trading.post_order, _place_order_charge),
    Endpoint("DELETE", "/v3/orders", Auth.API_KEY, trading.delete_orders, _cancel_all_charge),
    Endpoint("GET", "/v3/orders/client/{client_id}", Auth.API_KEY, trading.get_order_by_client_id),
    Endpoint("GET", "/v3/orders/{id}", Auth.API_KEY, trading.get_order),
    Endpoint("DELETE", "/v3/orders/{id}", Auth.API_KEY, trading.delete_order, _cancel_order_charge),
    Endpoint("POST", "/v3/withdrawals", Auth.API_KEY, trading.post_withdrawal),
    Endpoint("POST", "/v3/fast-withdrawals", Auth.API_KEY, trading.post_fast_withdrawal),
)
