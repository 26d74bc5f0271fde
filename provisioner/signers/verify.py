"""Signers are verified, not trusted: what a signer signed or sent is compared, field by field,
with what it was asked for, before it is journaled or counted.

A custody engine or remote signer may change a transaction (a policy rewriting fees, a bug,
a compromise); the bytes it hands back are decoded here, and what it broadcast itself is
compared with the node's copy of it.
"""

from __future__ import annotations

from typing import Any

from provisioner.signers.base import SignerError

# Fields compared in a signed transaction, in the order a difference is reported.
SIGNED_FIELDS = (
    "chainId",
    "to",
    "data",
    "value",
    "nonce",
    "gas",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "gasPrice",
)
# The node's names for what a broadcast transaction must match (eth_getTransactionByHash).
SENT_FIELDS = (
    ("from", "from"),
    ("nonce", "nonce"),
    ("to", "to"),
    ("input", "data"),
    ("value", "value"),
)


class SignerMismatch(SignerError):
    """The signer signed or sent something else than it was asked to."""


def decode_signed(raw: bytes) -> dict[str, Any]:
    """The fields of a signed transaction (EIP-1559 or legacy), normalised for comparison."""
    from eth_account._utils.legacy_transactions import Transaction
    from eth_account._utils.signing import extract_chain_id
    from eth_account._utils.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    if raw and raw[0] <= 0x7F:
        fields = dict(TypedTransaction.from_bytes(HexBytes(raw)).as_dict())
    else:
        fields = dict(Transaction.from_bytes(raw).as_dict())
        chain_id, _v = extract_chain_id(fields["v"])
        fields["chainId"] = chain_id
    return {k: _norm(k, fields.get(k)) for k in SIGNED_FIELDS}


def check_signed(raw: bytes, asked: dict[str, Any]) -> None:
    """SignerMismatch naming the first field of ``raw`` that differs from ``asked``."""
    try:
        signed = decode_signed(raw)
    except Exception:  # noqa: BLE001 - undecodable bytes are the signer's fault
        raise SignerMismatch(
            "the signer returned bytes that are not a signed transaction"
        ) from None
    for name in SIGNED_FIELDS:
        want = _norm(name, asked.get(name))
        if signed[name] != want:
            raise SignerMismatch(
                f"the signed transaction's {name} differs from what was asked "
                f"({_show(signed[name])}, asked {_show(want)}); nothing was sent"
            )


def check_sent(found: dict[str, Any], asked: dict[str, Any], sender: str) -> None:
    """SignerMismatch naming the first field of the node's copy of a transaction the signer
    broadcast that differs from what it was asked to send."""
    wanted = dict(asked, **{"from": sender})
    for node_name, ours in SENT_FIELDS:
        got, want = _norm(ours, found.get(node_name)), _norm(ours, wanted.get(ours))
        if got != want:
            raise SignerMismatch(
                f"the transaction the signer broadcast ({found.get('hash')}): {node_name} differs "
                f"from what was asked ({_show(got)}, asked {_show(want)})"
            )


def _norm(name: str, value: Any) -> Any:
    """One form per field: addresses and data as lower-case 0x hex, numbers as int, absent as None."""
    if value is None or value == b"" and name == "to":
        return None if name != "data" else "0x"
    if name in ("to", "from", "data"):
        if isinstance(value, bytes | bytearray):
            return "0x" + bytes(value).hex()
        text = str(value).lower()
        return text if text.startswith("0x") else "0x" + text
    if isinstance(value, str):
        return int(value, 16) if value.startswith("0x") else int(value)
    return int(value)


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:14]}...{text[-8:]}"
