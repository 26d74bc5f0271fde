"""STARK public keys as clients send them: ``0x`` + unpadded hex (Python) or 64 digits (TS)."""

from __future__ import annotations

STARK_PRIME = 2**251 + 17 * 2**192 + 1
STARK_BETA = 0x06F21413EFBE40DE150E596D72F7A8C5609AD26C15C915C1F4CDFCB99CEE9E89


def parse_field_element(text: object) -> int | None:
    """The integer in a hex string, with or without ``0x``, if it is a field element; else None."""
    if not isinstance(text, str) or not 1 <= len(text) <= 66:
        return None
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    if not digits or any(c not in "0123456789abcdefABCDEF" for c in digits):
        return None
    value = int(digits, 16)
    return value if 0 < value < STARK_PRIME else None


def is_on_curve(x: int, y: int) -> bool:
    return (y * y - (x * x * x + x + STARK_BETA)) % STARK_PRIME == 0


def canonical(x: int) -> str:
    """The form accounts show: 64 lower-case hex digits, zero-padded, no ``0x``."""
    return f"{x:064x}"
