"""What lands in Vault for an account (DESIGN.md §4), built from typed keys.

One layout for apply and import, so a trading bot reads either unchanged.
"""

from __future__ import annotations

from provisioner.clients.dydx import ApiCredentials, OnboardedAccount, StarkKeyPair

NETWORK_FIELD = "network"


def stark_secret(
    pair: StarkKeyPair, address: str, network: str, account: OnboardedAccount | None
) -> dict[str, str]:
    """The STARK key secret: the pair in 0x hex, the owner, and the position once dYdX knows it."""
    data = {
        "private_key": pair.private_key_hex,
        "public_key": pair.public_key_hex,
        "public_key_y_coordinate": pair.public_key_y_hex,
        "ethereum_address": address,
        NETWORK_FIELD: network,
    }
    if account is not None:
        data["position_id"] = str(account.position_id)
        data["account_id"] = account.account_id
    return data


def api_key_secret(creds: ApiCredentials, address: str, network: str) -> dict[str, str]:
    """One API key's secret: what ``dydx3.Client(api_key_credentials=...)`` takes, plus its owner."""
    return {
        "key": creds.key,
        "secret": creds.secret,
        "passphrase": creds.passphrase,
        "ethereum_address": address,
        NETWORK_FIELD: network,
    }
