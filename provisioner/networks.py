"""Contract addresses and ids dYdX v3 used per chain (see shared/reference/starkex-l1.md §1)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownNetwork:
    chain_id: int
    api_url: str
    exchange_contract: str
    usdc_contract: str
    collateral_asset_id: int


MAINNET = KnownNetwork(
    chain_id=1,
    api_url="https://api.dydx.exchange",
    exchange_contract="0xD54f502e184B6B739d7D27a6410a67dc462D69c8",
    usdc_contract="0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
    collateral_asset_id=0x02893294412A4C8F915F75892B395EBBF6859EC246EC365C3B1F56F47C3A0A5D,
)

SEPOLIA = KnownNetwork(
    chain_id=11155111,
    api_url="https://api.stage.dydx.exchange",
    exchange_contract="0x3D05aaCd0fED84f65dE0D91e4621298E702911E2",
    usdc_contract="0x7fC9C132268E0E414991449c003DbdB3E73E2059",
    collateral_asset_id=0x01E70C509C4C6BFAFE8B73D2FC1819444B2C0B435D4B82C0F24ADDFF9565CE25,
)

BY_CHAIN_ID: dict[int, KnownNetwork] = {n.chain_id: n for n in (MAINNET, SEPOLIA)}

USDC_DECIMALS = 6
