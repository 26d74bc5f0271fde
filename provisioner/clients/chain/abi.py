"""ABI words and hex quantities: calldata, revert payloads, the deposit event's topic.

The reads' two static types (address, uint256) are encoded here, one 32-byte word each
(checked against eth_abi in the tests); eth_abi's generic encoder is imported only for
transactions and reverts, which a plan never builds.
"""

from __future__ import annotations

import re
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

            return printable(str(decode(["string"], raw[4:])[0]))
        except Exception:  # noqa: BLE001 - malformed payload: the caller falls back to the message
            return None
    if raw and raw[:4] == _PANIC and len(raw) >= 36:
        code = int.from_bytes(raw[4:36], "big")
        meaning = _PANICS.get(code)
        return f"Panic(0x{code:02x})" + (f": {meaning}" if meaning else "")
    return None


def reason_in_message(text: str) -> str:
    """A revert reason from a node's message text, which some nodes fill with the raw payload:
    as hex ("0x08c379a0..."), or as the payload's bytes read as text. Decoded when it is one,
    else only its printable characters: never raw bytes."""
    found = re.search(r"0x(?:08c379a0|4e487b71)[0-9a-fA-F]*", text)
    if found:
        digits = found.group(0)[2:]
        decoded = decode_revert(bytes.fromhex(digits[: len(digits) // 2 * 2]))
        if decoded is not None:
            return decoded
    for encoding in ("latin-1", "utf-8"):
        try:
            raw = text.encode(encoding)
        except UnicodeEncodeError:
            continue
        for start in (raw.find(_ERROR_STRING), raw.find(_PANIC)):
            if start >= 0:
                decoded = decode_revert(raw[start:])
                if decoded is not None:
                    return decoded
    if any(not c.isprintable() or c == "\ufffd" for c in text):
        return _string_in_mangled_payload(text)
    return printable(text)


def _string_in_mangled_payload(text: str) -> str:
    """An Error(string) payload read as UTF-8 with its invalid bytes replaced: its string is the
    longest printable run, after the length word's last byte (a character if printable)."""
    runs = re.split(r"[^\S ]|[\x00-\x1f\x7f\ufffd]", text)
    best = max(runs, key=len, default="").strip()
    if best and ord(best[0]) == len(best[1:].encode()):
        best = best[1:]
    return printable(best)


def printable(text: str) -> str:
    """``text`` without control characters, replacement marks or stray bytes: a line to print."""
    kept = "".join(c if c.isprintable() and c != "\ufffd" else " " for c in text)
    return " ".join(kept.split())


# Solidity's panic codes (the language documentation's list).
_PANICS = {
    0x00: "generic compiler panic",
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "corrupt storage byte array",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialized function",
}


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
