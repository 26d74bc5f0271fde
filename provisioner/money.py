"""USDC amounts: ``decimal.Decimal`` in human units, ``int`` base units on chain. Never float."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

USDC_QUANTUM = Decimal("0.000001")
_SCALE = 10**6


class AmountError(ValueError):
    pass


def to_base_units(amount: Decimal) -> int:
    """Exact conversion of a USDC amount to 6-decimal base units; refuses sub-unit precision."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"USDC amounts are Decimal, got {type(amount).__name__}")
    scaled = amount * _SCALE
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{amount} USDC has more than 6 decimal places")
    return int(scaled)


def from_base_units(units: int) -> Decimal:
    return (Decimal(units) / _SCALE).quantize(USDC_QUANTUM).normalize() if units else Decimal(0)


def format_usdc(amount: Decimal) -> str:
    """Human form without exponent or trailing zeros: 8.2, 1000, 0.000001."""
    text = format(amount.normalize(), "f")
    return text


# Journaled deposit statuses (journal.py) not in the chain's events: in the pool, forgotten by
# the node (sent again before any new deposit), or awaiting a remote signer.
UNSETTLED_DEPOSIT = frozenset({"pending", "dropped", "awaiting"})


def in_flight(deposits: Iterable[tuple[str, int, str]]) -> int:
    """Base units of journaled deposits broadcast but not mined: ``(intent, amount, status)``.

    A dropped one counts too: its signed bytes are sent again before any new deposit."""
    return sum(
        amount
        for intent, amount, status in deposits
        if intent == "deposit" and status in UNSETTLED_DEPOSIT
    )


def deposit_need(target: int, deposited: int, pending: int) -> int:
    """Base units to deposit now to reach ``target``: never negative (deposits only top up)."""
    return max(0, target - deposited - pending)
