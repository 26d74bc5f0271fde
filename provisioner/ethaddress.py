"""Ethereum addresses and keccak without eth_utils, for the modules every run imports.

eth_utils imports pkg_resources at start-up (about 0.1 s, a few percent of a converged
plan of 1,000 accounts); eth_hash, which eth_utils itself hashes with, does not. EIP-55
is held to eth_utils in ``tests/clients/dydx/test_wire_and_curve.py``.
"""

from __future__ import annotations

import re
from functools import cache

from eth_hash.auto import keccak as _keccak

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def keccak(data: bytes) -> bytes:
    return bytes(_keccak(data))


def selector(signature: str) -> bytes:
    """A function's 4-byte selector: ``selector("balanceOf(address)")``."""
    return keccak(signature.encode())[:4]


def is_address(value: object) -> bool:
    """0x and 40 hex digits (any case: the checksum is checked by ``to_checksum``)."""
    return isinstance(value, str) and _ADDRESS.fullmatch(value) is not None


@cache
def eip55(address: str) -> str:
    """The EIP-55 checksummed form of a well-formed address, whatever its case."""
    lower = address[2:].lower()
    digest = keccak(lower.encode()).hex()
    return "0x" + "".join(
        c.upper() if d in "89abcdef" else c for c, d in zip(lower, digest[:40], strict=True)
    )


def to_checksum(value: str) -> str:
    """``value`` checksummed; ValueError unless it is 0x + 40 hex digits and, when mixed-case,
    already a valid checksum (a typo with a "corrected" checksum is still a typo)."""
    if not is_address(value):
        raise ValueError(f"not an Ethereum address: {value!r}")
    proper = eip55(value)
    digits = value[2:]
    if digits not in (digits.lower(), digits.upper()) and proper != value:
        raise ValueError(f"not an Ethereum address (bad EIP-55 checksum): {value!r}")
    return proper
