"""The v3 endpoints of onboarding and key management, with v3's fields and statuses."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from provisioner.sandbox.dev_accounts import sign_registration
from provisioner.sandbox.emulator import errors
from provisioner.sandbox.emulator.auth import body_object, normalise_address
from provisioner.sandbox.emulator.clock import iso_from_ms, now_iso, now_ms, parse_iso_ms
from provisioner.sandbox.emulator.credentials import default_api_key, random_api_key
from provisioner.sandbox.emulator.errors import ApiError, json_response
from provisioner.sandbox.emulator.ids import account_id
from provisioner.sandbox.emulator.rpc import RpcError
from provisioner.sandbox.emulator.runtime import Auth, Call, Endpoint
from provisioner.sandbox.emulator.stark_keys import canonical, is_on_curve, parse_field_element
from provisioner.sandbox.emulator.store import (
    ApiKeyMissing,
    LastApiKey,
    StarkKeyInUse,
    TooManyApiKeys,
    User,
    UserExists,
)
from provisioner.sandbox.emulator.views import account_json, transfer_json, user_json

TRANSFER_TYPES = ("DEPOSIT", "WITHDRAWAL", "FAST_WITHDRAWAL", "TRANSFER_OUT", "TRANSFER_IN")
MAX_TRANSFERS = 100
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_SMALL_INT = re.compile(r"^[0-9]{1,9}$")


def _user(call: Call) -> User:
    assert call.address is not None
    user = call.emulator.store.user(call.address)
    if user is None:
        raise ApiError(404, errors.USER_NOT_FOUND)
    return user


def _account_number(call: Call) -> int:
    text = call.request.headers.get("DYDX-ACCOUNT-NUMBER", "0")
    if not _SMALL_INT.match(text):
        raise errors.invalid("DYDX-ACCOUNT-NUMBER", "headers", text)
    return int(text)


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
    x = parse_field_element(body.get("starkKey"))
    if x is None:
        raise errors.invalid("starkKey", "body", body.get("starkKey"))
    y = parse_field_element(body.get("starkKeyYCoordinate"))
    if y is None or not is_on_curve(x, y):
        raise errors.invalid("starkKeyYCoordinate", "body", body.get("starkKeyYCoordinate"))
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
    user = _user(call)
    keys = call.emulator.store.api_keys_of(user.address)
    return json_response({"apiKeys": [{"key": key} for key in keys]})


async def post_api_key(call: Call) -> web.StreamResponse:
    user = _user(call)
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
    user = _user(call)
    try:
        call.emulator.store.delete_api_key(user.address, key)
    except ApiKeyMissing:
        raise ApiError(404, errors.API_KEY_NOT_FOUND) from None
    except LastApiKey:
        raise ApiError(400, errors.LAST_API_KEY) from None
    return json_response({"apiKey": key})


# -- user, registration, accounts, transfers ---------------------------------------------
async def get_users(call: Call) -> web.StreamResponse:
    return json_response({"user": user_json(_user(call), call.emulator.store)})


async def get_registration(call: Call) -> web.StreamResponse:
    """The sandbox operator's (user admin's) signature for L1 ``registerUser`` of the account's STARK key."""
    user = _user(call)
    account = call.emulator.store.account_by_number(user.address, _account_number(call))
    if account is None:
        raise ApiError(404, errors.ACCOUNT_NOT_FOUND)
    return json_response({"signature": sign_registration(user.address, int(account.stark_key, 16))})


async def get_accounts(call: Call) -> web.StreamResponse:
    store = call.emulator.store
    accounts = store.accounts_of(_user(call).address)
    return json_response({"accounts": [account_json(a, store) for a in accounts]})


async def get_account(call: Call) -> web.StreamResponse:
    wanted = call.request.match_info["id"]
    if not _UUID.match(wanted):
        raise errors.invalid("id", "params", wanted)
    store = call.emulator.store
    account = store.account(wanted)
    if account is None or account.address != _user(call).address:
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
    user = _user(call)
    if transfer_type not in (None, "DEPOSIT"):
        return json_response({"transfers": []})
    deposits = call.emulator.store.deposits_of_user(user.address, before, limit)
    return json_response({"transfers": [transfer_json(d) for d in deposits]})


async def get_recovery(call: Call) -> web.StreamResponse:
    store = call.emulator.store
    account = store.account_by_number(_user(call).address, 0)
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
)
