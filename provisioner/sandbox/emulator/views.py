"""v3's response objects (shared/reference/dydx-v3-api.md §5) built from stored state.

Amounts are decimal strings in human USDC ("8.2" for 8 200 000 base units),
computed from integers: never through a float.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from provisioner.networks import USDC_DECIMALS
from provisioner.sandbox.emulator.store import (
    Account,
    Deposit,
    Order,
    Store,
    User,
    Withdrawal,
)

MAKER_FEE_RATE = "0.0005"
TAKER_FEE_RATE = "0.0015"
_SCALE = 10**USDC_DECIMALS


def usdc(units: int) -> str:
    """Exact human form of USDC base units: 8200000 -> "8.2", 0 -> "0"."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), _SCALE)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}." + f"{frac:0{USDC_DECIMALS}d}".rstrip("0")


def user_json(user: User, store: Store) -> dict[str, Any]:
    account = store.account_by_number(user.address, 0)
    registered = (
        account is not None and store.registered_eth_address(account.stark_key) == user.address
    )
    profile = store.profile(user.address)
    return {
        "ethereumAddress": user.address,
        "isRegistered": registered,
        "email": profile.email,
        "username": profile.username,
        "referredByAffiliateLink": user.referred_by,
        "makerFeeRate": MAKER_FEE_RATE,
        "takerFeeRate": TAKER_FEE_RATE,
        "makerVolume30D": "0",
        "takerVolume30D": "0",
        "fees30D": "0",
        "userData": json.loads(profile.user_data),
        "dydxTokenBalance": "0",
        "stakedDydxTokenBalance": "0",
        "isEmailVerified": False,
        "isSharingUsername": profile.is_sharing_username,
        "isSharingAddress": profile.is_sharing_address,
        "country": user.country,
        "languageCode": profile.language_code,
        "hedgiesHeld": [],
    }


@dataclass(frozen=True)
class Balances:
    """An account's collateral in USDC base units. The sandbox never fills, so no positions."""

    quote: int  # confirmed deposits less every withdrawal's debit
    free: int  # quote less the initial margin of open orders
    pending_deposits: int
    pending_withdrawals: int


def balances(account: Account, store: Store) -> Balances:
    deposits = store.deposits_for_position(account.stark_key, account.position_id)
    confirmed = sum(d.quantized for d in deposits if d.confirmed_at is not None)
    pending = sum(d.quantized for d in deposits if d.confirmed_at is None)
    withdrawals = store.withdrawals_of_account(account.id)
    quote = confirmed - sum(w.debit_units for w in withdrawals)
    return Balances(
        quote=quote,
        free=quote - store.open_margin_units(account.id),
        pending_deposits=pending,
        pending_withdrawals=sum(w.debit_units for w in withdrawals if w.status == "PENDING"),
    )


def account_json(account: Account, store: Store) -> dict[str, Any]:
    held = balances(account, store)
    return {
        "starkKey": account.stark_key,
        "positionId": str(account.position_id),
        "equity": usdc(held.quote),
        "freeCollateral": usdc(held.free),
        "pendingDeposits": usdc(held.pending_deposits),
        "pendingWithdrawals": usdc(held.pending_withdrawals),
        "openPositions": {},
        "accountNumber": str(account.account_number),
        "id": account.id,
        "quoteBalance": usdc(held.quote),
        "createdAt": account.created_at,
    }


def transfer_json(deposit: Deposit) -> dict[str, Any]:
    amount = usdc(deposit.quantized)
    return {
        "id": deposit.id,
        "type": "DEPOSIT",
        "debitAsset": "USDC",
        "creditAsset": "USDC",
        "debitAmount": amount,
        "creditAmount": amount,
        "transactionHash": deposit.tx_hash,
        "status": "CONFIRMED" if deposit.confirmed_at is not None else "PENDING",
        "createdAt": deposit.created_at,
        "confirmedAt": deposit.confirmed_at,
        "clientId": None,
        "fromAddress": deposit.depositor,
        "toAddress": None,
    }


def withdrawal_json(withdrawal: Withdrawal, from_address: str) -> dict[str, Any]:
    return {
        "id": withdrawal.id,
        "type": withdrawal.type,
        "debitAsset": "USDC",
        "creditAsset": withdrawal.credit_asset,
        "debitAmount": usdc(withdrawal.debit_units),
        "creditAmount": usdc(withdrawal.credit_units),
        "transactionHash": None,
        "status": withdrawal.status,
        "createdAt": withdrawal.created_at,
        "confirmedAt": None,
        "clientId": withdrawal.client_id,
        "fromAddress": from_address,
        "toAddress": withdrawal.to_address,
    }


def order_json(order: Order, status: str | None = None) -> dict[str, Any]:
    return {
        "id": order.id,
        "clientId": order.client_id,
        "accountId": order.account_id,
        "market": order.market,
        "side": order.side,
        "price": order.price,
        "triggerPrice": order.trigger_price,
        "trailingPercent": order.trailing_percent,
        "size": order.size,
        "remainingSize": order.remaining_size,
        "type": order.type,
        "createdAt": order.created_at,
        "unfillableAt": order.unfillable_at,
        "expiresAt": order.expires_at,
        "status": status or order.status,
        "timeInForce": order.time_in_force,
        "postOnly": order.post_only,
        "reduceOnly": order.reduce_only,
        "cancelReason": order.cancel_reason,
    }
