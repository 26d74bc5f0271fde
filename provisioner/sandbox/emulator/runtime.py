"""The emulator's moving parts, bundled for handlers; and what one call to an endpoint carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from aiohttp import web

from provisioner.sandbox.emulator.auth import SignedRequest
from provisioner.sandbox.emulator.chain_follower import ChainFollower
from provisioner.sandbox.emulator.config import EmulatorConfig
from provisioner.sandbox.emulator.faults import FaultPlan
from provisioner.sandbox.emulator.rate_limit import GET_LIMIT, WRITE_LIMIT, Charge, RateLimiter
from provisioner.sandbox.emulator.rpc import EthRpc
from provisioner.sandbox.emulator.signatures import TypedSignature
from provisioner.sandbox.emulator.stats import RequestStats
from provisioner.sandbox.emulator.store import Store


@dataclass
class Emulator:
    config: EmulatorConfig
    store: Store
    rpc: EthRpc
    follower: ChainFollower
    limiter: RateLimiter
    faults: FaultPlan
    stats: RequestStats

    @classmethod
    def open(cls, config: EmulatorConfig) -> Emulator:
        store = Store(config.db_path)
        rpc = EthRpc(config.rpc_url)
        follower = ChainFollower(
            rpc,
            store,
            exchange_contract=config.network_exchange_contract,
            collateral_asset_id=config.network_collateral_asset_id,
            confirmations=config.confirmations,
            poll_interval_s=config.poll_interval_s,
        )
        return cls(
            config=config,
            store=store,
            rpc=rpc,
            follower=follower,
            limiter=RateLimiter(strict=config.strict_rate_limits),
            faults=FaultPlan(),
            stats=RequestStats(),
        )

    def reset(self) -> None:
        """Admin reset: no users, keys or counters left; the chain's facts stay."""
        self.store.reset()
        self.limiter.clear()
        self.faults.clear()
        self.stats.clear()


class Auth(Enum):
    PUBLIC = "public"
    ONBOARDING = "onboarding"  # EIP-712 "dYdX Onboarding" signature
    ETH_KEY = "eth_key"  # EIP-712 signature of the request
    API_KEY = "api_key"  # HMAC with an API key


@dataclass(frozen=True)
class Call:
    """One authenticated request, as a handler sees it."""

    emulator: Emulator
    request: web.Request
    signed: SignedRequest
    address: str | None = None  # the verified caller, for every auth but PUBLIC
    onboarding_signature: TypedSignature | None = None


Handler = Callable[[Call], Awaitable[web.StreamResponse]]
ChargeRule = Callable[[Call], Charge]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # aiohttp route template, e.g. /v3/accounts/{id}
    auth: Auth
    handler: Handler
    charge: ChargeRule | None = None  # None: v3's default limit for the method

    def charge_for(self, call: Call) -> Charge:
        if self.charge is not None:
            return self.charge(call)
        if self.method == "GET":
            return Charge("get", GET_LIMIT)
        return Charge("write", WRITE_LIMIT)
