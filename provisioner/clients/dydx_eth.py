"""What needs the Ethereum key: dYdX's EIP-712 messages and digests, built here; our signer signs.

Each function gives what dydx3 2.1.0 gives for the same input (its ``SignOnboardingAction``,
``SignEthPrivateAction``, ``eth_signing.util`` and ``Onboarding.recover_default_api_key_credentials``):
``tests/clients/dydx/test_eip712.py`` holds them to dydx3. Built from keccak and eth_keys, which
the signers import anyway, instead of importing dydx3: dydx3 pulls in web3 and sympy, about a
second of CPU at the start of every apply that onboards, while every account's first steps
wait for it.

Imported only when a request or a key derivation needs an Ethereum signature (onboarding,
STARK key, default API key, POST/DELETE /v3/api-keys): a converged plan never needs it.
"""

from __future__ import annotations

import base64
from functools import cache
from typing import Any, Protocol

from eth_hash.auto import keccak
from eth_keys import keys

from provisioner.clients.dydx.errors import SignatureMismatch
from provisioner.redact import Redactor
from provisioner.signers.base import EthSigner

NETWORK_ID_MAINNET = 1
OFF_CHAIN_ONBOARDING_ACTION = "dYdX Onboarding"
OFF_CHAIN_KEY_DERIVATION_ACTION = "dYdX STARK Key"
SIGNATURE_TYPE_NO_PREPEND = 0
ONLY_SIGN_ON_DOMAIN_MAINNET = "https://trade.dydx.exchange"

_DOMAIN = "dYdX"
_VERSION = "1.0"
_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId)"
_STRUCT_NAME = "dYdX"
_ONBOARDING_FIELDS = ("action",)
_ONBOARDING_FIELDS_MAINNET = ("action", "onlySignOn")
_ETH_PRIVATE_FIELDS = ("method", "requestPath", "body", "timestamp")


class Signs(Protocol):
    """dydx3's signer interface: the typed data, its digest, and the address it must be from."""

    def sign(
        self, eip712_message: dict[str, Any], message_hash: bytes, opt_signer_address: str | None
    ) -> str: ...


def _hash_string(text: str) -> bytes:
    return keccak(text.encode("utf-8"))


def _struct_type(fields: tuple[str, ...]) -> str:
    return f"{_STRUCT_NAME}({','.join(f'string {name}' for name in fields)})"


@cache
def _domain_hash(network_id: int) -> bytes:
    return keccak(
        _hash_string(_DOMAIN_TYPE)
        + _hash_string(_DOMAIN)
        + _hash_string(_VERSION)
        + network_id.to_bytes(32, "big")
    )


def _digest(network_id: int, fields: tuple[str, ...], message: dict[str, str]) -> bytes:
    """EIP-712: keccak(0x1901 ‖ domain hash ‖ struct hash), every field a string."""
    struct = keccak(
        _hash_string(_struct_type(fields)) + b"".join(_hash_string(message[f]) for f in fields)
    )
    return keccak(b"\x19\x01" + _domain_hash(network_id) + struct)


def _typed_data(
    network_id: int, fields: tuple[str, ...], message: dict[str, str]
) -> dict[str, Any]:
    """The typed-data message a signer is asked to sign, as dydx3 builds it."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            _STRUCT_NAME: [{"type": "string", "name": name} for name in fields],
        },
        "domain": {"name": _DOMAIN, "version": _VERSION, "chainId": network_id},
        "primaryType": _STRUCT_NAME,
        "message": dict(message),
    }


def _onboarding(network_id: int, action: str) -> tuple[dict[str, Any], bytes]:
    """The typed data and digest of an onboarding action: on mainnet it names the web app."""
    fields = _ONBOARDING_FIELDS_MAINNET if network_id == NETWORK_ID_MAINNET else _ONBOARDING_FIELDS
    message = {"action": action}
    if network_id == NETWORK_ID_MAINNET:
        message["onlySignOn"] = ONLY_SIGN_ON_DOMAIN_MAINNET
    return _typed_data(network_id, fields, message), _onboarding_digest(network_id, action)


@cache
def _onboarding_digest(network_id: int, action: str) -> bytes:
    """The two onboarding messages name no address: their digests depend on the network alone."""
    fields = _ONBOARDING_FIELDS_MAINNET if network_id == NETWORK_ID_MAINNET else _ONBOARDING_FIELDS
    message = {"action": action, "onlySignOn": ONLY_SIGN_ON_DOMAIN_MAINNET}
    return _digest(network_id, fields, message)


def _strip_hex(text: str) -> str:
    return text[2:] if text.startswith("0x") else text


def typed_signature(raw: str) -> str:
    """dydx3's ``create_typed_signature(raw, NO_PREPEND)``: r ‖ s ‖ v with v as 27/28, then the
    signature type byte 00. Raises ``ValueError`` for anything but 65 bytes with v in 0, 1, 27, 28."""
    stripped = _strip_hex(raw)
    if len(stripped) != 130:
        raise ValueError("invalid raw signature")
    rs, v = stripped[:128], stripped[128:].lower()
    fixed = {"00": "1b", "01": "1c", "1b": "1b", "1c": "1c"}.get(v)
    if fixed is None:
        raise ValueError("invalid v value")
    return f"0x{rs}{fixed}0{SIGNATURE_TYPE_NO_PREPEND}"


def recover_typed(message_hash: bytes, typed: str) -> str:
    """The address a NO_PREPEND typed signature of ``message_hash`` recovers to (checksummed)."""
    stripped = _strip_hex(typed)
    if len(stripped) != 132 or int(stripped[-2:], 16) != SIGNATURE_TYPE_NO_PREPEND:
        raise ValueError("not a typed signature without prefix")
    raw = bytes.fromhex(stripped[:130])
    v = raw[64] - 27 if raw[64] >= 27 else raw[64]
    signature = keys.Signature(
        vrs=(v, int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"))
    )
    return str(signature.recover_public_key_from_msg_hash(message_hash).to_checksum_address())


class Dydx3Signer:
    """dydx3's signer interface over our ``EthSigner``: the typed data is built here, ours signs.

    Each signature is checked against the digest, so a signer that signs something else
    (another key, another EIP-712 encoding) fails here instead of yielding a wrong STARK key.
    """

    def __init__(self, signer: EthSigner, redactor: Redactor) -> None:
        self._signer = signer
        self._redactor = redactor

    def sign(
        self, eip712_message: dict[str, Any], message_hash: bytes, opt_signer_address: str | None
    ) -> str:
        address = self._signer.address
        if opt_signer_address is not None and opt_signer_address.lower() != address.lower():
            raise SignatureMismatch(
                f"asked to sign for {opt_signer_address} with the signer of {address}"
            )
        raw = self._signer.sign_typed_data(eip712_message)
        self._redactor.register(raw)
        try:
            typed = typed_signature(raw)
            recovered = recover_typed(message_hash, typed)
        except Exception:
            raise SignatureMismatch(
                f"the signer of {address} returned a malformed signature"
            ) from None
        self._redactor.register(typed)
        if _strip_hex(recovered).lower() != _strip_hex(address).lower():
            raise SignatureMismatch(
                f"the signer of {address} signed something else than dYdX's EIP-712 message "
                f"(its signature recovers to {recovered})"
            )
        return typed


class Replay:
    """A signer that answers with a signature we already hold for the same message."""

    def __init__(self, typed_signature: str) -> None:
        self._typed = typed_signature

    def sign(
        self, eip712_message: dict[str, Any], message_hash: bytes, opt_signer_address: str | None
    ) -> str:
        return self._typed


def onboarding_signature(signer: Signs, network_id: int, address: str) -> str:
    """The "dYdX Onboarding" signature: ``DYDX-SIGNATURE`` of POST /v3/onboarding, and the
    seed of the default API key."""
    message, digest = _onboarding(network_id, OFF_CHAIN_ONBOARDING_ACTION)
    return signer.sign(message, digest, address)


def stark_key_signature(signer: Signs, network_id: int, address: str) -> str:
    """The "dYdX STARK Key" signature the STARK key pair is derived from."""
    message, digest = _onboarding(network_id, OFF_CHAIN_KEY_DERIVATION_ACTION)
    return signer.sign(message, digest, address)


def _keccak_uint256(value: int) -> bytes:
    """``Web3.solidityKeccak(['uint256'], [value])`` as dydx3 calls it: the value's big-endian
    bytes, padded to 32 but never cut, so a whole typed signature (66 bytes) is hashed as it is,
    less any leading zero bytes."""
    return keccak(value.to_bytes(max(32, (value.bit_length() + 7) // 8), "big"))


def stark_private_key(signature: str) -> int:
    """dydx3's derivation: keccak of the signature taken as a uint256 (so a leading zero byte
    of r is dropped, as dydx3 does), its top 251 bits."""
    return int.from_bytes(_keccak_uint256(int(signature, 16)), "big") >> 5


def default_credentials(signer: Signs, network_id: int, address: str) -> dict[str, str]:
    """The default API key dYdX derives from the onboarding signature: key, secret, passphrase
    (locally: no request)."""
    signature = onboarding_signature(signer, network_id, address)
    hashed_r = _keccak_uint256(int(signature[2:66], 16))
    hashed_s = _keccak_uint256(int(signature[66:130], 16))
    key_hex = hashed_s[:16].hex()
    return {
        "secret": base64.urlsafe_b64encode(hashed_r[:30]).decode(),
        "key": "-".join((key_hex[:8], key_hex[8:12], key_hex[12:16], key_hex[16:20], key_hex[20:])),
        "passphrase": base64.urlsafe_b64encode(hashed_s[16:31]).decode(),
    }


def eth_private_signature(
    signer: Signs,
    network_id: int,
    address: str,
    *,
    method: str,
    request_path: str,
    body: str,
    timestamp: str,
) -> str:
    """``DYDX-SIGNATURE`` of an Ethereum-key request (POST/DELETE /v3/api-keys)."""
    message = {"method": method, "requestPath": request_path, "body": body, "timestamp": timestamp}
    typed = _typed_data(network_id, _ETH_PRIVATE_FIELDS, message)
    return signer.sign(typed, _digest(network_id, _ETH_PRIVATE_FIELDS, message), address)
