"""USDC amounts in the manifest: exact decimals, at most 6 places, >= 0, never through a float."""

from __future__ import annotations

import re
from decimal import Decimal

from provisioner.money import USDC_QUANTUM

_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# far above any real deposit; keeps every amount exact in Decimal's context
_LIMIT = Decimal(10) ** 15

EXPECTED = 'a USDC amount such as "25000.50": at most 6 decimal places, >= 0'


class AmountProblem(ValueError):
    """Why a value is not a valid amount; ``str()`` is safe to show."""


def parse_amount(value: object) -> Decimal:
    """The exact amount ``value`` stands for, in canonical form (``8.2000000`` -> ``8.2``, ``1e3`` -> ``1000``).

    ``value`` is text, an int, or a ``Decimal`` the YAML reader built from a
    float's source text. A binary ``float`` is refused outright: its digits are
    already lost.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise AmountProblem(f"is {type(value).__name__}, not an amount")
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value):
            raise AmountProblem(f"{value[:40]!r} is not a decimal number")
        amount = Decimal(value)
    else:
        amount = Decimal(value)
    if not amount.is_finite():
        raise AmountProblem("is not a finite number")
    if amount < 0:
        raise AmountProblem(f"{_plain(amount)} is negative")
    if amount >= _LIMIT:
        raise AmountProblem("is more than 10^15 USDC")
    if amount != amount.quantize(USDC_QUANTUM):
        raise AmountProblem(f"{_plain(amount)} has more than 6 decimal places (USDC has 6)")
    return canonical(amount)


def canonical(amount: Decimal) -> Decimal:
    """No exponent, no trailing zeros, no negative zero: 1E+3 -> 1000, 8.20 -> 8.2, -0 -> 0."""
    if amount == 0:
        return Decimal(0)
    if amount == amount.to_integral_value():
        return amount.quantize(Decimal(1))
    return amount.normalize()


def _plain(amount: Decimal) -> str:
    text = format(amount, "f") if amount.adjusted() > -30 else format(amount, "e")
    return text if len(text) <= 40 else format(amount, "e")
