"""v3's response objects (shared/reference/dydx-v3-api.md §5) built from stored state.

Amounts are decimal strings in human USDC ("8.2" for 8 200 000 base units),
computed from integers: never through a float.
"""

from __future__ import annotations

from typing import Any

from provisioner.networks import USDC_DECIMALS
from provisioner.sandbox.emulator.store import Account, Deposit, Store, User

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
    return {
        "ethereumAddress": user.address,
        "isRegistered": registered,
        "email": None,
        "username": None,
        "referredByAffiliateLink": user.referred_by,
        "makerFeeRate": MAKER_FEE_RATE,
        "takerFeeRate": TAKER_FEE_RATE,
        "makerVolume30D": "0",
        "takerVolume30D": "0",
        "fees30D": "0",
        "userData": {},
        "dydxTokenBalance": "0",
        "stakedDydxTokenBalance": "0",
        "isEmailVerified": False,
        "isSharingUsername": False,
        "isSharingAddress": False,
        "country": user.country,
        "languageCode": None,
        "hedgiesHeld": [],
    }


def account_json(account: Account, store: Store) -> dict[str, Any]:
    deposits = store.deposits_for_position(account.stark_key, account.position_id)
    confirmed = sum(d.quantized for d in deposits if d.confirmed_at is not None)
    pending = sum(d.quantized for d in deposits if d.confirmed_at is None)
    return {
        "starkKey": account.stark_key,
        "positionId": str(account.position_id),
        "equity": usdc(confirmed),
        "freeCollateral": usdc(confirmed),
        "pendingDeposits": usdc(pending),
        "pendingWithdrawals": "0",
        "openPositions": {},
        "accountNumber": str(account.account_number),
        "id": account.id,
        "quoteBalance": usdc(confirmed),
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
