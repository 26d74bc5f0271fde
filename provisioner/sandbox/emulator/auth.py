"""v3's three ways to sign a request, checked the way v3 checked them.

- onboarding: ``DYDX-SIGNATURE`` is an EIP-712 signature of the "dYdX Onboarding"
  action for this chain (no timestamp, the body is not covered);
- Ethereum key ("eth-private"): an EIP-712 signature of method, request path with
  query, body (``{}`` when empty) and ``DYDX-TIMESTAMP``;
- API key: ``base64(HMAC-SHA256(base64url_decode(secret), timestamp + METHOD +
  path?query + body))``, body ``""`` when empty; either base64 alphabet, padding
  optional; ``DYDX-PASSPHRASE`` must be the key's.

The signer must be ``DYDX-ETHEREUM-ADDRESS`` (any case). Bodies are compared in
the forms clients sign them: Python signs compact JSON but sends ``json.dumps``
default spacing, so the parsed body is re-serialised compactly (both ``\\uXXXX``
and raw non-ASCII), and the raw text is tried too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDictProxy

from provisioner.sandbox.emulator import errors
from provisioner.sandbox.emulator.clock import parse_iso_ms
from provisioner.sandbox.emulator.config import TIMESTAMP_WINDOW_S
from provisioner.sandbox.emulator.credentials import decode_base64_lenient
from provisioner.sandbox.emulator.errors import ApiError
from provisioner.sandbox.emulator.signatures import (
    ONBOARDING_ACTION,
    SignatureFormatError,
    TypedSignature,
    action_message,
    eth_private_message,
    parse_typed_signature,
    recover_signer,
)
from provisioner.sandbox.emulator.store import Store, StoredApiKey

_EMPTY = object()


@dataclass(frozen=True)
class SignedRequest:
    """What a signature covers, taken from the request as received."""

    method: str
    raw_path: str  # path with query, exactly as sent
    headers: CIMultiDictProxy[str]
    body_text: str
    body_json: Any  # parsed body; _EMPTY when there is none (or it is {})

    @property
    def has_body(self) -> bool:
        return self.body_json is not _EMPTY

    def body_forms(self, empty: str) -> list[str]:
        """The strings a client may have signed as this body, most likely first."""
        if not self.has_body:
            return [empty]
        forms = [
            json.dumps(self.body_json, separators=(",", ":")),
            json.dumps(self.body_json, separators=(",", ":"), ensure_ascii=False),
            self.body_text,
        ]
        return list(dict.fromkeys(forms))


def parse_body(text: str) -> Any:
    """The JSON body, or _EMPTY for none or ``{}``; a 400 for text that is not JSON."""
    if not text.strip():
        return _EMPTY
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise errors.invalid("body", "body", text) from None
    if value == {} or value is None:
        return _EMPTY
    return value


def body_object(request: SignedRequest) -> dict[str, Any]:
    if not request.has_body:
        return {}
    if not isinstance(request.body_json, dict):
        raise errors.invalid("body", "body", request.body_text)
    return request.body_json


def normalise_address(value: str | None, location: str, param: str) -> str:
    """A lower-case 0x address, or a 400 naming the input."""
    if (
        not isinstance(value, str)
        or len(value) != 42
        or value[:2] not in ("0x", "0X")
        or any(c not in "0123456789abcdefABCDEF" for c in value[2:])
    ):
        raise errors.invalid(param, location, value)
    return "0x" + value[2:].lower()


def _header(request: SignedRequest, name: str) -> str:
    value = request.headers.get(name)
    if not value:
        raise ApiError(401, errors.UNAUTHORIZED)
    return value


def check_timestamp(text: str, now_ms: int) -> None:
    try:
        sent_ms = parse_iso_ms(text)
    except (ValueError, OverflowError, OSError):
        raise ApiError(401, errors.STALE_TIMESTAMP) from None
    if abs(now_ms - sent_ms) > TIMESTAMP_WINDOW_S * 1000:
        raise ApiError(401, errors.STALE_TIMESTAMP)


def verify_onboarding(request: SignedRequest, chain_id: int) -> tuple[str, TypedSignature]:
    """The onboarding caller's address and signature; 400 if the signature is not theirs."""
    address = normalise_address(
        request.headers.get("DYDX-ETHEREUM-ADDRESS"), "headers", "DYDX-ETHEREUM-ADDRESS"
    )
    try:
        signature = parse_typed_signature(request.headers.get("DYDX-SIGNATURE"))
    except SignatureFormatError:
        raise ApiError(400, errors.INVALID_ONBOARDING_SIGNATURE) from None
    if recover_signer(signature, action_message(ONBOARDING_ACTION, chain_id)) != address:
        raise ApiError(400, errors.INVALID_ONBOARDING_SIGNATURE)
    return address, signature


def verify_eth_private(request: SignedRequest, chain_id: int, now_ms: int) -> str:
    """The address that signed this eth-key request; 401 otherwise."""
    signature_text = _header(request, "DYDX-SIGNATURE")
    timestamp = _header(request, "DYDX-TIMESTAMP")
    address_text = _header(request, "DYDX-ETHEREUM-ADDRESS")
    address = normalise_address(address_text, "headers", "DYDX-ETHEREUM-ADDRESS")
    check_timestamp(timestamp, now_ms)
    try:
        signature = parse_typed_signature(signature_text)
    except SignatureFormatError:
        raise ApiError(401, errors.UNAUTHORIZED) from None
    for body in request.body_forms(empty="{}"):
        message = eth_private_message(chain_id, request.method, request.raw_path, body, timestamp)
        if recover_signer(signature, message) == address:
            return address
    raise ApiError(401, errors.UNAUTHORIZED)


def verify_api_key(request: SignedRequest, store: Store, now_ms: int) -> StoredApiKey:
    """The API key that signed this request; 401 for an unknown key, wrong passphrase or signature."""
    signature_text = _header(request, "DYDX-SIGNATURE")
    key_id = _header(request, "DYDX-API-KEY")
    timestamp = _header(request, "DYDX-TIMESTAMP")
    passphrase = _header(request, "DYDX-PASSPHRASE")
    check_timestamp(timestamp, now_ms)
    api_key = store.api_key(key_id)
    if api_key is None:
        raise ApiError(401, errors.API_KEY_NOT_FOUND)
    if not hmac.compare_digest(passphrase.encode(), api_key.passphrase.encode()):
        raise ApiError(401, errors.UNAUTHORIZED)
    given = decode_base64_lenient(signature_text)
    secret = decode_base64_lenient(api_key.secret)
    if given is None or secret is None:
        raise ApiError(401, errors.UNAUTHORIZED)
    prefix = timestamp + request.method + request.raw_path
    for body in request.body_forms(empty=""):
        expected = hmac.new(secret, (prefix + body).encode(), hashlib.sha256).digest()
        if hmac.compare_digest(expected, given):
            return api_key
    raise ApiError(401, errors.UNAUTHORIZED)
