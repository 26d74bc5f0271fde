"""Settings of one emulator process, as given on its command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provisioner.networks import BY_CHAIN_ID, KnownNetwork

DYDX_CONFIRMATIONS = 14
"""Ethereum confirmations dYdX waited for before crediting a deposit."""

TIMESTAMP_WINDOW_S = 30
"""How far DYDX-TIMESTAMP may be from server time, in either direction."""

MAX_API_KEYS_PER_USER = 20

FACT_REGISTRY_BY_CHAIN = {
    1: "0xBE9a129909EbCb954bC065536D2bfAfBd170d27A",
    11155111: "0xCD828e691cA23b66291ae905491Bb89aEe3Abd82",
}
"""Where v3's fast-withdrawal facts were registered (the clients sign the address into the condition)."""


@dataclass(frozen=True)
class EmulatorConfig:
    db_path: Path
    rpc_url: str
    chain_id: int = 11155111
    host: str = "127.0.0.1"
    port: int = 8080
    confirmations: int = DYDX_CONFIRMATIONS
    strict_rate_limits: bool = True
    admin: bool = False
    poll_interval_s: float = 0.5
    require_wallet_history: bool = False
    exchange_contract: str | None = None
    usdc_contract: str | None = None
    collateral_asset_id: int | None = None
    fact_registry_contract: str | None = None

    @property
    def network_exchange_contract(self) -> str:
        return (self.exchange_contract or _known(self.chain_id).exchange_contract).lower()

    @property
    def network_usdc_contract(self) -> str:
        return (self.usdc_contract or _known(self.chain_id).usdc_contract).lower()

    @property
    def network_fact_registry_contract(self) -> str:
        known = FACT_REGISTRY_BY_CHAIN.get(self.chain_id)
        address = self.fact_registry_contract or known
        if address is None:
            raise ValueError(
                f"chain id {self.chain_id} had no v3 fact registry; pass --fact-registry-contract"
            )
        return address.lower()

    @property
    def network_collateral_asset_id(self) -> int:
        if self.collateral_asset_id is not None:
            return self.collateral_asset_id
        return _known(self.chain_id).collateral_asset_id


def _known(chain_id: int) -> KnownNetwork:
    try:
        return BY_CHAIN_ID[chain_id]
    except KeyError:
        raise ValueError(
            f"chain id {chain_id} is not one dYdX v3 ran on; pass --exchange-contract, "
            "--usdc-contract and --collateral-asset-id"
        ) from None
