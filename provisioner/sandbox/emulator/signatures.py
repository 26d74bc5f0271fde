"""EIP-712 messages v3 had signed with the Ethereum key, and recovery of their signer.

A v3 "typed signature" is 66 bytes, ``r ‖ s ‖ v ‖ t``, where ``t`` says what digest
was signed (shared/reference/dydx-v3-api.md §2.2): 0 the EIP-712 digest itself,
1 and 2 that digest under an "Ethereum Signed Message" prefix, 3 (TS client)
``personal_sign`` of a JSON rendering of the message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import keccak

ONBOARDING_ACTION = "dYdX Onboarding"
STARK_KEY_ACTION = "dYdX STARK Key"
ONLY_SIGN_ON = "https://trade.dydx.exchange"
MAINNET_CHAIN_ID = 1

_DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId)"
_ACTION_TYPE = b"dYdX(string action)"
_ACTION_TYPE_MAINNET = b"dYdX(string action,string onlySignOn)"
_ETH_PRIVATE_TYPE = b"dYdX(string method,string requestPath,string body,string timestamp)"

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class SignatureFormatError(ValueError):
    """Not a 66-byte typed signature."""


@dataclass(frozen=True)
class TypedSignature:
    r: int
    s: int
    v: int  # 27 or 28
    sig_type: int
    raw: bytes  # all 66 bytes

    @property
    def r_bytes(self) -> bytes:
        return self.raw[:32]

    @property
    def s_bytes(self) -> bytes:
        return self.raw[32:64]


def parse_typed_signature(text: str | None) -> TypedSignature:
    if not text:
        raise SignatureFormatError("missing signature")
    hex_part = text[2:] if text[:2] in ("0x", "0X") else text
    if len(hex_part) != 132:
        raise SignatureFormatError("a typed signature is 66 bytes")
    try:
        raw = bytes.fromhex(hex_part)
    except ValueError:
        raise SignatureFormatError("not hex") from None
    v = raw[64]
    if v in (0, 1):
        v += 27
    if v not in (27, 28) or raw[65] > 3:
        raise SignatureFormatError("bad v or signature type")
    return TypedSignature(
        r=int.from_bytes(raw[:32], "big"),
        s=int.from_bytes(raw[32:64], "big"),
        v=v,
        sig_type=raw[65],
        raw=raw,
    )


def _h(text: str) -> bytes:
    return keccak(text.encode())


def domain_separator(chain_id: int) -> bytes:
    return keccak(keccak(_DOMAIN_TYPE) + _h("dYdX") + _h("1.0") + chain_id.to_bytes(32, "big"))


@dataclass(frozen=True)
class Eip712Message:
    """One signed v3 message: its fields (for the personal-sign form) and its EIP-712 digest."""

    chain_id: int
    fields: dict[str, str]
    digest: bytes


def _message(chain_id: int, struct_type: bytes, fields: dict[str, str]) -> Eip712Message:
    struct_hash = keccak(keccak(struct_type) + b"".join(_h(value) for value in fields.values()))
    digest = keccak(b"\x19\x01" + domain_separator(chain_id) + struct_hash)
    return Eip712Message(chain_id=chain_id, fields=fields, digest=digest)


def action_message(action: str, chain_id: int) -> Eip712Message:
    """The onboarding or STARK-key action; on mainnet (only) it carries ``onlySignOn``."""
    if chain_id == MAINNET_CHAIN_ID:
        return _message(
            chain_id, _ACTION_TYPE_MAINNET, {"action": action, "onlySignOn": ONLY_SIGN_ON}
        )
    return _message(chain_id, _ACTION_TYPE, {"action": action})


def eth_private_message(
    chain_id: int, method: str, request_path: str, body: str, timestamp: str
) -> Eip712Message:
    fields = {"method": method, "requestPath": request_path, "body": body, "timestamp": timestamp}
    return _message(chain_id, _ETH_PRIVATE_TYPE, fields)


def _personal_text(message: Eip712Message) -> str:
    # The TS client's SigningMethod.Personal: domain fields, then message keys sorted.
    ordered: dict[str, object] = {"name": "dYdX", "version": "1.0", "chainId": message.chain_id}
    for key in sorted(message.fields):
        ordered[key] = message.fields[key]
    return json.dumps(ordered, indent=2, ensure_ascii=False)


def _signed_hash(sig: TypedSignature, message: Eip712Message) -> bytes:
    if sig.sig_type == 0:
        return message.digest
    if sig.sig_type == 1:
        return keccak(b"\x19Ethereum Signed Message:\n32" + message.digest)
    if sig.sig_type == 2:
        return keccak(b"\x19Ethereum Signed Message:\n\x20" + message.digest)
    text = _personal_text(message).encode()
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(text)).encode() + text)


def recover_signer(sig: TypedSignature, message: Eip712Message) -> str | None:
    """Lower-case address that made ``sig`` over ``message``, or None if it recovers to nothing."""
    if not (0 < sig.r < _SECP256K1_N and 0 < sig.s < _SECP256K1_N):
        return None
    try:
        signature = keys.Signature(vrs=(sig.v - 27, sig.r, sig.s))
        public_key = signature.recover_public_key_from_msg_hash(_signed_hash(sig, message))
    except (BadSignature, ValidationError, ValueError):
        return None
    return str(public_key.to_address()).lower()
