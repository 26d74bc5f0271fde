"""The dYdX web app's local storage, exported as JSON: read one wallet's STARK key pair and API key.

The web app keeps two entries, each a JSON string of an object keyed by wallet address::

    STARK_KEY_PAIRS  {"0xabc…": {"publicKey", "publicKeyYCoordinate", "privateKey", "walletAddress"?, …}}
    API_KEY_PAIRS    {"0xabc…": {"key", "secret", "passphrase", "walletAddress"?, …}}

An export is either the whole local storage (an object of strings, those two among
others) or just those two entries, as strings or as already-decoded objects. Hex is
accepted with or without 0x, in any case, with or without leading zeros; STARK keys are
compared as integers and the public key must be the one the private key gives.

Only local checks happen here (shape, hex, the key pair, base64url); whether dYdX
accepts the API key is the importer's business. Every secret value is handed to
``on_secret`` (the Redactor) the moment it is read, and no message quotes one.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dydx3.starkex.starkex_resources.python_signature import EC_ORDER

from provisioner.clients.dydx import ApiCredentials, StarkKeyPair
from provisioner.errors import ProvisionerError

STARK_KEY_PAIRS = "STARK_KEY_PAIRS"
API_KEY_PAIRS = "API_KEY_PAIRS"
# a local-storage export is kilobytes; anything this big is another file
MAX_EXPORT_BYTES = 16 * 1024 * 1024

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX = re.compile(r"(?:0[xX])?[0-9a-fA-F]+")
_UUID_SHAPE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_ENTRY_FIELDS = {
    STARK_KEY_PAIRS: ("publicKey", "publicKeyYCoordinate", "privateKey"),
    API_KEY_PAIRS: ("key", "secret", "passphrase"),
}
_EXPECTED_DOC = (
    f"expected a JSON object holding {STARK_KEY_PAIRS} and {API_KEY_PAIRS} "
    "(the web app's whole local storage, or just those two entries)"
)

OnSecret = Callable[[str], None]


class ExportError(ProvisionerError):
    """The export is unreadable or not what the web app stores. Names the file; never quotes a secret."""


@dataclass(frozen=True)
class WebAppKeys:
    """One wallet's keys from the web app, checked locally and in canonical form."""

    address: str  # as the manifest spells it
    stark: StarkKeyPair
    api: ApiCredentials


def load_export(path: str | Path, address: str, on_secret: OnSecret) -> WebAppKeys:
    """Read the export at ``path`` and return the keys filed under ``address``."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_EXPORT_BYTES + 1)
    except FileNotFoundError:
        raise ExportError(
            f"{source}: no such file; expected a JSON export of the dYdX web app's local storage"
        ) from None
    except OSError as exc:
        raise ExportError(
            f"{source}: cannot read it ({exc.strerror or type(exc).__name__})"
        ) from None
    if len(raw) > MAX_EXPORT_BYTES:
        raise ExportError(
            f"{source}: larger than {MAX_EXPORT_BYTES // (1024 * 1024)} MiB; "
            "expected a JSON export of the dYdX web app's local storage"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExportError(f"{source}: not UTF-8 text; {_EXPECTED_DOC}") from None
    return parse_export(text, source, address, on_secret)


def parse_export(text: str, source: str, address: str, on_secret: OnSecret) -> WebAppKeys:
    """The keys filed under ``address`` in an export's text; ``source`` names it in messages."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        # The decoder's message names a position, never the text around it.
        raise ExportError(
            f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); {_EXPECTED_DOC}"
        ) from None
    if not isinstance(doc, dict):
        raise ExportError(f"{source}: the file holds a JSON {_kind(doc)}; {_EXPECTED_DOC}")
    missing = [name for name in (STARK_KEY_PAIRS, API_KEY_PAIRS) if name not in doc]
    if missing:
        raise ExportError(f"{source}: no {' and no '.join(missing)}; {_EXPECTED_DOC}")
    stark_entry = _wallet_entry(doc[STARK_KEY_PAIRS], STARK_KEY_PAIRS, source, address)
    api_entry = _wallet_entry(doc[API_KEY_PAIRS], API_KEY_PAIRS, source, address)
    stark = _stark_pair(stark_entry, f"{source}: {STARK_KEY_PAIRS}[{address.lower()}]", on_secret)
    api = _api_credentials(api_entry, f"{source}: {API_KEY_PAIRS}[{address.lower()}]", on_secret)
    return WebAppKeys(address=address, stark=stark, api=api)


# -- the two entries -------------------------------------------------------------------------


def _wallet_entry(value: object, name: str, source: str, address: str) -> Mapping[str, Any]:
    """The object filed under ``address`` in one entry (a JSON string, or an object already)."""
    fields = ", ".join(_ENTRY_FIELDS[name])
    expected = f'expected an object keyed by wallet address: {{"0x…": {{{fields}}}}}'
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ExportError(
                f"{source}: {name} is a string but not JSON text; {expected}, as the web app stores it"
            ) from None
    if not isinstance(value, dict):
        raise ExportError(f"{source}: {name} is a JSON {_kind(value)}; {expected}")
    if any(field in value for field in _ENTRY_FIELDS[name]):
        raise ExportError(
            f"{source}: {name} holds key fields at its top level, not under a wallet address; {expected}"
        )
    wanted = address.lower()
    matches = [v for k, v in value.items() if isinstance(k, str) and k.strip().lower() == wanted]
    if not matches:
        present = sorted(k for k in value if isinstance(k, str) and _ADDRESS.fullmatch(k.strip()))
        holds = (
            f"it holds keys for {', '.join(present)}" if present else "it holds no wallet address"
        )
        raise ExportError(
            f"{source}: {name} has no entry for {address} ({holds}); "
            "expected an export made with this account's wallet connected"
        )
    if any(m != matches[0] for m in matches[1:]):
        raise ExportError(
            f"{source}: {name} has two different entries for {address} (in different letter case); "
            "expected one entry per wallet"
        )
    entry = matches[0]
    if not isinstance(entry, dict):
        raise ExportError(
            f"{source}: {name}[{wanted}] is a JSON {_kind(entry)}; expected an object with {fields}"
        )
    wallet = entry.get("walletAddress")
    if wallet is not None and (not isinstance(wallet, str) or wallet.strip().lower() != wanted):
        shown = (
            wallet.strip()
            if isinstance(wallet, str) and _ADDRESS.fullmatch(wallet.strip())
            else "something else"
        )
        raise ExportError(
            f"{source}: {name}[{wanted}].walletAddress is {shown}, not the address it is filed under; "
            "expected an export of the web app made while this wallet was connected"
        )
    return entry


def _stark_pair(entry: Mapping[str, Any], where: str, on_secret: OnSecret) -> StarkKeyPair:
    private_key = _hex_int(entry, "privateKey", where, on_secret, secret=True)
    public_key = _hex_int(entry, "publicKey", where, on_secret)
    y = (
        None
        if entry.get("publicKeyYCoordinate") is None
        else _hex_int(entry, "publicKeyYCoordinate", where, on_secret)
    )
    if not 0 < private_key < EC_ORDER:
        raise ExportError(
            f"{where}.privateKey is out of range; expected a STARK private key (0 < key < the curve order)"
        )
    for form in (hex(private_key), f"{private_key:064x}"):
        on_secret(form)
    pair = StarkKeyPair.from_private_key(private_key)
    if pair.public_key != public_key:
        raise ExportError(
            f"{where}: publicKey is not the public key of privateKey; "
            "expected the key pair exactly as the web app stored it"
        )
    if y is not None and pair.public_key_y != y:
        raise ExportError(
            f"{where}: publicKeyYCoordinate is not the y coordinate of privateKey's public key; "
            "expected the key pair exactly as the web app stored it"
        )
    return pair


def _api_credentials(entry: Mapping[str, Any], where: str, on_secret: OnSecret) -> ApiCredentials:
    secret = _text(entry, "secret", where, on_secret, secret=True)
    passphrase = _text(entry, "passphrase", where, on_secret, secret=True)
    key = _text(entry, "key", where, on_secret)
    if not _UUID_SHAPE.fullmatch(key):
        raise ExportError(
            f"{where}.key is not an API key id; expected a UUID-shaped id "
            "(8-4-4-4-12 hex digits) as dYdX issued it"
        )
    return ApiCredentials(
        key=key, secret=_base64url(secret, where, on_secret), passphrase=passphrase
    )


# -- values ----------------------------------------------------------------------------------


def _text(
    entry: Mapping[str, Any], field: str, where: str, on_secret: OnSecret, *, secret: bool = False
) -> str:
    value = entry.get(field)
    if value is None:
        raise ExportError(f"{where} has no {field}; expected {', '.join(_fields_of(where))}")
    if not isinstance(value, str):
        raise ExportError(f"{where}.{field} is a JSON {_kind(value)}; expected a string")
    value = value.strip()
    if secret:
        on_secret(value)
    if not value:
        raise ExportError(f"{where}.{field} is empty; expected the value the web app stored")
    return value


def _hex_int(
    entry: Mapping[str, Any],
    field: str,
    where: str,
    on_secret: OnSecret,
    *,
    secret: bool = False,
) -> int:
    text = _text(entry, field, where, on_secret, secret=secret)
    if not _HEX.fullmatch(text):
        raise ExportError(
            f"{where}.{field} is not hexadecimal; expected hex digits, with or without 0x"
        )
    return int(text, 16)


def _base64url(secret: str, where: str, on_secret: OnSecret) -> str:
    """The secret with its padding restored (the HMAC key is the decoded bytes, so they stay the same)."""
    if not _BASE64URL.fullmatch(secret):
        raise ExportError(
            f"{where}.secret is not base64url; expected the API secret exactly as dYdX issued it"
        )
    padded = secret.rstrip("=") + "=" * (-len(secret.rstrip("=")) % 4)
    try:
        base64.urlsafe_b64decode(padded.encode())
    except (binascii.Error, ValueError):
        raise ExportError(
            f"{where}.secret is not base64url (bad length); expected the API secret exactly as dYdX issued it"
        ) from None
    on_secret(padded)
    return padded


def _fields_of(where: str) -> tuple[str, ...]:
    return _ENTRY_FIELDS[STARK_KEY_PAIRS if STARK_KEY_PAIRS in where else API_KEY_PAIRS]


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(
        type(value), "value"
    )
