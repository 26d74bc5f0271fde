"""Signers are verified, not trusted: signed bytes and broadcast transactions are compared
field by field with what was asked (issue 15)."""

from __future__ import annotations

import pytest

import provisioner  # noqa: F401  (the dydx3/web3 import fix)
from provisioner.signers.local import LocalKeySigner
from provisioner.signers.verify import SignerMismatch, check_sent, check_signed

KEY = "0x" + "11" * 32
ASKED = {
    "from": LocalKeySigner(KEY).address,
    "to": "0x3D05aaCd0fED84f65dE0D91e4621298E702911E2",
    "data": "0xabcdef",
    "value": 0,
    "gas": 90_000,
    "chainId": 11155111,
    "maxFeePerGas": 3 * 10**9,
    "maxPriorityFeePerGas": 10**9,
    "nonce": 7,
}


def test_what_was_asked_passes_in_both_transaction_types() -> None:
    signer = LocalKeySigner(KEY)
    check_signed(signer.sign_transaction(ASKED), ASKED)
    legacy = {k: v for k, v in ASKED.items() if not k.startswith("max")} | {"gasPrice": 10**9}
    check_signed(signer.sign_transaction(legacy), legacy)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chainId", 1),
        ("to", "0x7fC9C132268E0E414991449c003DbdB3E73E2059"),
        ("data", "0xabcdee"),
        ("value", 1),
        ("nonce", 8),
        ("maxFeePerGas", 30 * 10**9),
        ("maxPriorityFeePerGas", 2 * 10**9),
    ],
)
def test_each_changed_field_is_named(field: str, value: object) -> None:
    raw = LocalKeySigner(KEY).sign_transaction({**ASKED, field: value})
    with pytest.raises(SignerMismatch, match=f"{field} differs"):
        check_signed(raw, ASKED)


def test_bytes_that_are_no_transaction_are_refused() -> None:
    with pytest.raises(SignerMismatch, match="not a signed transaction"):
        check_signed(b"\x02\x01", ASKED)


def test_a_broadcast_transaction_is_compared_with_the_nodes_copy() -> None:
    node = {
        "hash": "0x" + "aa" * 32,
        "from": ASKED["from"].lower(),
        "nonce": hex(7),
        "to": str(ASKED["to"]).lower(),
        "input": "0xabcdef",
        "value": "0x0",
    }
    check_sent(node, ASKED, str(ASKED["from"]))
    for name, value in (
        ("input", "0x00"),
        ("nonce", "0x8"),
        ("value", "0x1"),
        ("to", "0x" + "00" * 20),
    ):
        with pytest.raises(SignerMismatch, match=f"{name} differs"):
            check_sent({**node, name: value}, ASKED, str(ASKED["from"]))
    with pytest.raises(SignerMismatch, match="from differs"):
        check_sent(node, ASKED, "0x" + "11" * 20)
