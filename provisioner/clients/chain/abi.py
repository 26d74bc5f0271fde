"""ABI words and hex quantities: calldata, revert payloads, the deposit event's topic.

The reads' two static types (address, uint256) are encoded here, one 32-byte word each
(checked against eth_abi in the tests); eth_abi's generic encoder is imported only for
transactions and reverts, which a plan never builds.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from provisioner.ethaddress import keccak, selector, to_checksum

UINT256_MAX = 2**256 - 1
LOG_DEPOSIT_TOPIC = (
    "0x" + keccak(b"LogDeposit(address,uint256,uint256,uint256,uint256,uint256)").hex()
)
_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)


def calldata(signature: str, types: list[str], args: list[Any]) -> str:
    if all(t in _STATIC_WORDS for t in types):
        words = b"".join(_STATIC_WORDS[t](a) for t, a in zip(types, args, strict=True))
        return "0x" + (_selector(signature) + words).hex()
    from eth_abi import encode

    return "0x" + (_selector(signature) + encode(types, args)).hex()


def decode_revert(raw: bytes | None) -> str | None:
    """The reason in an Error(string) or Panic(uint256) revert payload; None for anything else."""
    if raw and raw[:4] == _ERROR_STRING:
        try:
            from eth_abi import decode

            return str(decode(["string"], raw[4:])[0])
        except Exception:  # noqa: BLE001 - malformed payload: the caller falls back to the message
            return None
    if raw and raw[:4] == _PANIC and len(raw) >= 36:
        return f"panic 0x{int.from_bytes(raw[4:36], 'big'):x}"
    return None


def uint(value: int, name: str) -> int:
    """Exact integers only: a float or Decimal here is a bug upstream, not something to round."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value <= UINT256_MAX:
        raise ValueError(f"{name} {value} is out of uint256 range")
    return value


def hex_bytes(value: object) -> bytes | None:
    if not isinstance(value, str) or not value.startswith("0x"):
        return None
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        return None


def _address_word(value: str) -> bytes:
    return bytes(12) + bytes.fromhex(to_checksum(value)[2:])


def _uint_word(value: int) -> bytes:
    return uint(value, "argument").to_bytes(32, "big")


_STATIC_WORDS: dict[str, Callable[[Any], bytes]] = {"address": _address_word, "uint256": _uint_word}


@cache
def _selector(signature: str) -> bytes:
    return selector(signature)
