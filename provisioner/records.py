"""The Vault layout: where this tool writes, the fields it writes, how it marks them.

One layout for apply, import and observe, so a trading bot reads either unchanged, and
one place to read it: destinations, field names, the default API key's name, the
ownership metadata and the journal's place under ``state_path``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

MANAGED_BY = "dydx-provisioner"
META_MANAGED_BY = "managed-by"
META_ACCOUNT = "account"

DEFAULT_API_KEY = "default"

# custom_metadata an API key destination carries once this tool has rotated its key. Public
# facts (key ids and times, never a secret), so a metadata-only reader can plan from them.
# They describe the key whose id META_KEY_ID names: if the data holds another key (a run
# died between the metadata and the data write), they are stale and ignored.
META_KEY_ID = "api-key-id"
META_KEY_CREATED = "api-key-created-at"  # ISO-8601 UTC, when dYdX created that key
META_REPLACES = "replaces"  # the previous key's id: live at dYdX until its overlap ends
ROTATION_METADATA = (META_KEY_ID, META_KEY_CREATED, META_REPLACES)

STARK_PRIVATE_KEY = "private_key"
STARK_PUBLIC_KEY = "public_key"
STARK_PUBLIC_KEY_Y = "public_key_y_coordinate"
ETHEREUM_ADDRESS = "ethereum_address"
POSITION_ID = "position_id"
ACCOUNT_ID = "account_id"
NETWORK_FIELD = "network"
STARK_FIELDS = frozenset(
    {STARK_PRIVATE_KEY, STARK_PUBLIC_KEY, STARK_PUBLIC_KEY_Y, ETHEREUM_ADDRESS}
)

API_KEY = "key"
API_SECRET = "secret"
API_PASSPHRASE = "passphrase"
API_FIELDS = frozenset({API_KEY, API_SECRET, API_PASSPHRASE})


class StarkKeyPair(Protocol):
    """What the STARK secret is written from (clients.dydx.StarkKeyPair); a protocol, so that
    this module, read by facts and the planner, depends on no client."""

    @property
    def private_key_hex(self) -> str: ...
    @property
    def public_key_hex(self) -> str: ...
    @property
    def public_key_y_hex(self) -> str: ...


class OnboardedAccount(Protocol):
    @property
    def position_id(self) -> int: ...
    @property
    def account_id(self) -> str: ...


class ApiCredentials(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def secret(self) -> str: ...
    @property
    def passphrase(self) -> str: ...


def journal_root(state_path: str) -> str:
    return f"{state_path}/journal"


def journal_path(state_path: str, account: str) -> str:
    """The folder of one account's journal entries (policies grant it by prefix)."""
    return f"{journal_root(state_path)}/{account}"


def stark_secret(
    pair: StarkKeyPair, address: str, network: str, account: OnboardedAccount | None
) -> dict[str, str]:
    """The STARK key secret: the pair in 0x hex, the owner, and the position once dYdX knows it."""
    data = {
        STARK_PRIVATE_KEY: pair.private_key_hex,
        STARK_PUBLIC_KEY: pair.public_key_hex,
        STARK_PUBLIC_KEY_Y: pair.public_key_y_hex,
        ETHEREUM_ADDRESS: address,
        NETWORK_FIELD: network,
    }
    if account is not None:
        data[POSITION_ID] = str(account.position_id)
        data[ACCOUNT_ID] = account.account_id
    return data


def api_key_secret(creds: ApiCredentials, address: str, network: str) -> dict[str, str]:
    """One API key's secret: what ``dydx3.Client(api_key_credentials=...)`` takes, plus its owner."""
    return {
        API_KEY: creds.key,
        API_SECRET: creds.secret,
        API_PASSPHRASE: creds.passphrase,
        ETHEREUM_ADDRESS: address,
        NETWORK_FIELD: network,
    }


def stark_pair_fields(data: Mapping[str, str]) -> tuple[int, int, int] | None:
    """(private, public, y) from a stored STARK secret, None when it holds no private key."""
    if STARK_PRIVATE_KEY not in data:
        return None
    return (
        int(data[STARK_PRIVATE_KEY], 16),
        int(data[STARK_PUBLIC_KEY], 16),
        int(data[STARK_PUBLIC_KEY_Y], 16),
    )


def api_credential_fields(data: Mapping[str, str]) -> tuple[str, str, str]:
    return data[API_KEY], data[API_SECRET], data[API_PASSPHRASE]
