"""v3's error envelope, and the statuses and messages the emulator answers with.

Every failure leaves the emulator as ``{"errors": [{"msg": ...}]}``. Validation
failures add ``param``, ``location`` and ``value``, the express-validator shape v3
used (``{"value": ..., "msg": "Invalid value", "param": "toISO", "location": "query"}``
in dydx-v3-python #189).

Known from v3 (shared/reference/dydx-v3-api.md):

- 400 ``Invalid signature for onboarding request``
- 400 ``Invalid signature for order`` (dydx-v3-python #75, #138, #140)
- 400 ``Withdrawal would put account under collateralization minumum`` (sic; the
  official clients' integration tests expect this text for an unfunded account)
- 400 ``Order expiration cannot be less than 1 minute(s) in the future``
- 400 ``User wallet has no transactions, Ethereum or USDC`` (only with ``--require-wallet-history``)
- 401 ``Unauthorized``: bad HMAC signature or wrong passphrase
- ``API key not found``: the message is v3's, the status 401 is our choice

Chosen here, where v3's answer is not on record:

- 401 ``Unauthorized``: a missing auth header, or an eth-key (EIP-712) signature whose
  signer is not ``DYDX-ETHEREUM-ADDRESS``
- 401 ``Timestamp must be within 30 seconds of the current time``: ``DYDX-TIMESTAMP``
  unparseable or too far off (either direction)
- 404 ``User not found``: a valid eth-key request for an address that never onboarded
- 409 ``User already exists``: a second ``POST /v3/onboarding`` for one address
- 409 ``Stark key already in use``: onboarding with another user's STARK key
- 400 ``Cannot have more than 20 API keys``: the 21st ``POST /v3/api-keys``
- 400 ``Cannot delete the last API key``: ``DELETE /v3/api-keys`` of the only key left
- 404 ``API key not found``: ``DELETE /v3/api-keys`` of a key the user does not have
- 404 ``Account not found``: ``GET /v3/accounts/:id`` of an unknown or foreign account
- 404 ``Not found``: a path the emulator does not serve; 405 for a known path, other method
- 429 ``Too many requests``: rate limited (plus ``Retry-After``)
- 503 ``Ethereum node unavailable``: the wallet-history check could not reach the chain
- 400 ``Invalid value`` (with ``param``/``location``/``value``): malformed input
- 400 ``Invalid signature for withdrawal`` / ``Invalid signature for fast withdrawal``:
  the STARK signature of a withdrawal does not verify against the account's key
- 400 ``Order would put account under collateralization minumum``: the order's
  initial margin exceeds the account's free collateral (worded as v3's withdrawal error)
- 400 ``Withdrawal expiration cannot be less than 7 day(s) in the future`` (both kinds;
  checked after collateral, so the official clients' unfunded-account tests see the
  collateral error whatever expiration they chose)
- 400 ``Order size must be at least the market's minimum order size``, ``Order size
  must be a multiple of the market's step size``, ``Order price must be a multiple of
  the market's tick size``, ``Post-only orders cannot be IOC or FOK``, ``Market orders
  must be IOC or FOK``, ``Fast withdrawal credit cannot exceed its debit``, ``Fast
  withdrawal amount exceeds the maximum``
- 400 ``Order is already canceled`` / ``Order is already filled``: cancelling it again
- 404 ``Order not found``: an order id or client id the caller does not own
- 409 ``Client id already in use``: a second order (or withdrawal) with one clientId
- 409 ``Username already taken``: ``PUT /v3/users`` with another user's username
- 201 for the creating POSTs (onboarding, api-keys, accounts, orders, withdrawals,
  fast-withdrawals); 200 for everything else
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

INVALID_ONBOARDING_SIGNATURE = "Invalid signature for onboarding request"
NO_WALLET_HISTORY = "User wallet has no transactions, Ethereum or USDC"
UNAUTHORIZED = "Unauthorized"
API_KEY_NOT_FOUND = "API key not found"
STALE_TIMESTAMP = "Timestamp must be within 30 seconds of the current time"
USER_NOT_FOUND = "User not found"
USER_EXISTS = "User already exists"
STARK_KEY_IN_USE = "Stark key already in use"
TOO_MANY_API_KEYS = "Cannot have more than 20 API keys"
LAST_API_KEY = "Cannot delete the last API key"
ACCOUNT_NOT_FOUND = "Account not found"
NOT_FOUND = "Not found"
METHOD_NOT_ALLOWED = "Method not allowed"
RATE_LIMITED = "Too many requests"
CHAIN_UNAVAILABLE = "Ethereum node unavailable"
INVALID_VALUE = "Invalid value"
INVALID_ORDER_SIGNATURE = "Invalid signature for order"
INVALID_WITHDRAWAL_SIGNATURE = "Invalid signature for withdrawal"
INVALID_FAST_WITHDRAWAL_SIGNATURE = "Invalid signature for fast withdrawal"
WITHDRAWAL_UNDERCOLLATERALIZED = "Withdrawal would put account under collateralization minumum"
ORDER_UNDERCOLLATERALIZED = "Order would put account under collateralization minumum"
ORDER_EXPIRATION_TOO_SOON = "Order expiration cannot be less than 1 minute(s) in the future"
WITHDRAWAL_EXPIRATION_TOO_SOON = "Withdrawal expiration cannot be less than 7 day(s) in the future"
ORDER_SIZE_TOO_SMALL = "Order size must be at least the market's minimum order size"
ORDER_SIZE_STEP = "Order size must be a multiple of the market's step size"
ORDER_PRICE_TICK = "Order price must be a multiple of the market's tick size"
POST_ONLY_TIME_IN_FORCE = "Post-only orders cannot be IOC or FOK"
MARKET_ORDER_TIME_IN_FORCE = "Market orders must be IOC or FOK"
FAST_WITHDRAWAL_CREDIT = "Fast withdrawal credit cannot exceed its debit"
FAST_WITHDRAWAL_MAXIMUM = "Fast withdrawal amount exceeds the maximum"
ORDER_ALREADY_CANCELED = "Order is already canceled"
ORDER_ALREADY_FILLED = "Order is already filled"
ORDER_NOT_FOUND = "Order not found"
CLIENT_ID_IN_USE = "Client id already in use"
USERNAME_TAKEN = "Username already taken"
INJECTED_FAULT = "Injected fault"


class ApiError(Exception):
    """A v3 error response; raised anywhere in a handler, rendered by the app's middleware."""

    def __init__(
        self,
        status: int,
        msg: str,
        *,
        param: str | None = None,
        location: str | None = None,
        value: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.param = param
        self.location = location
        self.value = value
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"msg": self.msg}
        if self.param is not None:
            entry = {
                "value": self.value,
                "msg": self.msg,
                "param": self.param,
                "location": self.location,
            }
        return {"errors": [entry]}


def invalid(param: str, location: str, value: Any) -> ApiError:
    """A 400 validation error naming the bad input, as express-validator reported it."""
    if isinstance(value, str) and len(value) > 200:
        value = value[:200]
    return ApiError(400, INVALID_VALUE, param=param, location=location, value=value)


def error_response(status: int, msg: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(ApiError(status, msg).body(), status=status, headers=headers)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )
