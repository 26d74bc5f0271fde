"""v3's request details that need no Ethereum key: HMAC signatures, paths, ids, timestamps.

Plain standard library on purpose: a converged ``plan`` only makes HMAC-signed reads,
and importing dydx3 for them would pull in web3 and sympy, a second of start-up. Each function gives what dydx3 2.1.0 gives for the
same input; ``tests/clients/dydx/test_wire_and_curve.py`` holds them to dydx3 and to the
reference vectors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# dYdX's namespace for user and account ids (uuid5)
_ID_NAMESPACE = uuid.UUID("0f9da948-a6fb-4c45-9edc-4685c3f3317d")


def hmac_signature(
    secret: str, iso_timestamp: str, method: str, request_path: str, body: str = ""
) -> str:
    """``DYDX-SIGNATURE`` of an API-key request: url-safe base64 of HMAC-SHA256 keyed with the
    url-safe base64-decoded secret over timestamp + METHOD + path (query included) + body.

    Raises ``binascii.Error`` or ``ValueError`` when the secret is not base64url."""
    key = base64.urlsafe_b64decode(secret.encode("utf-8"))
    message = (iso_timestamp + method + request_path + body).encode("utf-8")
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def now_iso() -> str:
    """``DYDX-TIMESTAMP``: UTC, millisecond precision, ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def query_path(path: str, params: Mapping[str, Any]) -> str:
    """``path?k=v&...`` as v3 clients sign it: insertion order, not percent-encoded, None left out."""
    query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return f"{path}?{query}" if query else path


def compact_json(data: Any) -> str:
    """A request body as signed and sent: ``,`` and ``:`` separators, insertion order."""
    return json.dumps(data, separators=(",", ":"))


def user_id(address: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, address.lower()))


def account_id(address: str, account_number: int = 0) -> str:
    """The id of the address's account ``account_number`` (``/v3/accounts/:id``)."""
    return str(uuid.uuid5(_ID_NAMESPACE, user_id(address) + str(account_number)))
