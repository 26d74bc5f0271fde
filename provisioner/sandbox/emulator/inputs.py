"""Reading request fields the way v3 validated them: a 400 naming the field, or the value."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from provisioner.sandbox.emulator import errors
from provisioner.sandbox.emulator.clock import parse_iso_ms

_DECIMAL = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_SMALL_INT = re.compile(r"^[0-9]{1,9}$")


def choice(
    source: Any, name: str, allowed: tuple[str, ...], location: str, default: str | None = None
) -> str:
    value = source.get(name, default)
    if value not in allowed:
        raise errors.invalid(name, location, value)
    assert isinstance(value, str)
    return value


def optional_choice(source: Any, name: str, allowed: tuple[str, ...], location: str) -> str | None:
    value = source.get(name)
    if value is None:
        return None
    return choice(source, name, allowed, location)


def decimal(source: Any, name: str, location: str, *, positive: bool = True) -> Decimal:
    """A non-negative decimal string (``"0.001"``, ``"30000"``); positive unless told otherwise."""
    value = source.get(name)
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise errors.invalid(name, location, value)
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise errors.invalid(name, location, value) from None
    if positive and number <= 0:
        raise errors.invalid(name, location, value)
    return number


def optional_decimal(source: Any, name: str, location: str) -> Decimal | None:
    return None if source.get(name) is None else decimal(source, name, location)


def boolean(source: Any, name: str, location: str, default: bool | None = None) -> bool:
    value = source.get(name, default)
    if not isinstance(value, bool):
        raise errors.invalid(name, location, value)
    return value


def text(source: Any, name: str, location: str, *, max_length: int = 100) -> str:
    value = source.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise errors.invalid(name, location, value)
    return value


def iso_ms(source: Any, name: str, location: str) -> int:
    value = source.get(name)
    try:
        return parse_iso_ms(value)
    except (ValueError, OverflowError, OSError, TypeError):
        raise errors.invalid(name, location, value) from None


def query_limit(query: Any, maximum: int = 100) -> int:
    text_value = query.get("limit")
    if text_value is None:
        return maximum
    if not _SMALL_INT.match(text_value) or not 1 <= int(text_value) <= maximum:
        raise errors.invalid("limit", "query", text_value)
    return int(text_value)


def stark_signature(source: Any, name: str = "signature") -> tuple[int, int]:
    """``r`` and ``s`` of a STARK signature: 128 hex digits, r then s, as both clients serialise it."""
    value = source.get(name)
    if (
        not isinstance(value, str)
        or len(value) != 128
        or any(c not in "0123456789abcdefABCDEF" for c in value)
    ):
        raise errors.invalid(name, "body", value)
    return int(value[:64], 16), int(value[64:], 16)
