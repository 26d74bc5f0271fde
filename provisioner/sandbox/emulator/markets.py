"""The sandbox's perpetual markets: v3's own market parameters, with fixed sandbox prices.

Synthetic asset ids and resolutions are v3's (the clients sign with them, so they
must be these). Step and tick sizes, minimum order sizes and margin fractions are
v3's published ones for these markets. Prices never move: the sandbox has no
oracle and no order book, so ``indexPrice`` and ``oraclePrice`` are constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from provisioner.sandbox.emulator.clock import iso_from_ms

FUNDING_INTERVAL_MS = 3_600_000


@dataclass(frozen=True)
class Market:
    market: str
    base_asset: str
    synthetic_asset_id: int
    resolution: int  # quantums per unit of the synthetic asset
    step_size: Decimal
    tick_size: Decimal
    min_order_size: Decimal
    initial_margin_fraction: Decimal
    maintenance_margin_fraction: Decimal
    price: Decimal
    max_position_size: Decimal
    baseline_position_size: Decimal
    incremental_position_size: Decimal

    def as_json(self, now_ms: int) -> dict[str, Any]:
        next_funding = (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        price = str(self.price)
        return {
            "market": self.market,
            "status": "ONLINE",
            "baseAsset": self.base_asset,
            "quoteAsset": "USD",
            "stepSize": str(self.step_size),
            "tickSize": str(self.tick_size),
            "indexPrice": price,
            "oraclePrice": price,
            "priceChange24H": "0",
            "nextFundingRate": "0",
            "nextFundingAt": iso_from_ms(next_funding),
            "minOrderSize": str(self.min_order_size),
            "type": "PERPETUAL",
            "initialMarginFraction": str(self.initial_margin_fraction),
            "maintenanceMarginFraction": str(self.maintenance_margin_fraction),
            "transferMarginFraction": "0",
            "volume24H": "0",
            "trades24H": "0",
            "openInterest": "0",
            "incrementalInitialMarginFraction": "0.01",
            "incrementalPositionSize": str(self.incremental_position_size),
            "maxPositionSize": str(self.max_position_size),
            "baselinePositionSize": str(self.baseline_position_size),
            "assetResolution": str(self.resolution),
            "syntheticAssetId": hex(self.synthetic_asset_id),
        }


def _m(
    market: str,
    asset_id: int,
    resolution: int,
    step: str,
    tick: str,
    min_size: str,
    imf: str,
    mmf: str,
    price: str,
    sizes: tuple[str, str, str],
) -> Market:
    base = market.split("-")[0]
    return Market(
        market=market,
        base_asset=base,
        synthetic_asset_id=asset_id,
        resolution=resolution,
        step_size=Decimal(step),
        tick_size=Decimal(tick),
        min_order_size=Decimal(min_size),
        initial_margin_fraction=Decimal(imf),
        maintenance_margin_fraction=Decimal(mmf),
        price=Decimal(price),
        max_position_size=Decimal(sizes[0]),
        baseline_position_size=Decimal(sizes[1]),
        incremental_position_size=Decimal(sizes[2]),
    )


MARKETS: dict[str, Market] = {
    m.market: m
    for m in (
        _m(
            "BTC-USD",
            0x4254432D3130000000000000000000,
            10**10,
            "0.0001",
            "1",
            "0.001",
            "0.05",
            "0.03",
            "30000",
            ("170", "9", "1.5"),
        ),
        _m(
            "ETH-USD",
            0x4554482D3900000000000000000000,
            10**9,
            "0.001",
            "0.1",
            "0.01",
            "0.05",
            "0.03",
            "2000",
            ("2700", "140", "28"),
        ),
        _m(
            "LINK-USD",
            0x4C494E4B2D37000000000000000000,
            10**7,
            "0.1",
            "0.001",
            "1",
            "0.10",
            "0.05",
            "15",
            ("14000", "700", "140"),
        ),
        _m(
            "SOL-USD",
            0x534F4C2D3700000000000000000000,
            10**7,
            "0.1",
            "0.001",
            "1",
            "0.10",
            "0.05",
            "60",
            ("29000", "1450", "290"),
        ),
    )  # fmt: skip
}
