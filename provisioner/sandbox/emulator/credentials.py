"""API-key credentials: the default key v3 derived from the onboarding signature, and random ones.

Shapes (shared/reference/dydx-v3-api.md §3): ``key`` a lower-case UUID-shaped hex
string, ``secret`` 40 url-safe base64 characters (30 bytes), ``passphrase`` 20
(15 bytes). The default key is what ``recover_default_api_key_credentials`` computes
on the client from the same signature, so both sides agree without talking.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from eth_utils import keccak

from provisioner.sandbox.emulator.signatures import TypedSignature


@dataclass(frozen=True)
class ApiKeyCredentials:
    key: str
    secret: str
    passphrase: str

    def as_json(self) -> dict[str, str]:
        return {"key": self.key, "secret": self.secret, "passphrase": self.passphrase}

    def __repr__(self) -> str:  # secrets stay out of logs and tracebacks
        return f"ApiKeyCredentials(key={self.key!r}, secret=<redacted>, passphrase=<redacted>)"


def _uuid_shape(raw16: bytes) -> str:
    h = raw16.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def default_api_key(onboarding_signature: TypedSignature) -> ApiKeyCredentials:
    """The key, secret and passphrase v3 made from the r and s halves of the onboarding signature."""
    hashed_r = keccak(onboarding_signature.r_bytes)
    hashed_s = keccak(onboarding_signature.s_bytes)
    return ApiKeyCredentials(
        key=_uuid_shape(hashed_s[:16]),
        secret=_b64url(hashed_r[:30]),
        passphrase=_b64url(hashed_s[16:31]),
    )


def random_api_key() -> ApiKeyCredentials:
    return ApiKeyCredentials(
        key=_uuid_shape(secrets.token_bytes(16)),
        secret=_b64url(secrets.token_bytes(30)),
        passphrase=_b64url(secrets.token_bytes(15)),
    )


def decode_base64_lenient(text: str) -> bytes | None:
    """Bytes of base64 in either alphabet, padding optional; None if it is not base64."""
    cleaned = text.strip().replace("-", "+").replace("_", "/").rstrip("=")
    if not cleaned or len(cleaned) % 4 == 1:
        return None
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
