"""The floor of a fresh apply when dYdX, Vault and the RPC answer from afar and blocks take seconds.

It is the latest time at which any account could be converged, from the moment apply starts,
counting only what no implementation of the product's promises can avoid (CPU is free here):

- the round trips that must follow one another, each at its service's latency: look, take the
  locks, look again under them, keep the STARK key in Vault before dYdX sees it, onboard, get
  the registration signature, then simulate, journal and broadcast the transactions. An
  account's register and approve do not depend on each other; its deposit depends on both, so
  it is simulated on the pending state once they are in the node's pool. Reads that can go
  side by side (Vault, chain and dYdX in the first look) count as the slowest of them;
- the blocks that cannot be avoided: one sender's dependent transactions share a block when
  sent in nonce order, so register, approve and deposit need one block, not three; then the
  network's ``confirmations`` on top of it: a deposit or registration counts as done only
  then (README, "Money-path promises", 3), so an account is converged no sooner, and apply
  waits for them before it forgets the journal entries;
- v3's rate-limit waits for the requests the run actually made (benchmarks/ratelimit_floor.py):
  they hold up the API keys, which after onboarding run beside the chain's branch.

Block times are those observed in the run: the block that takes the transactions is the first
one mined after they could have been sent.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.ratelimit_floor import Floor


@dataclass(frozen=True)
class Latencies:
    """Round trip, in seconds, to each service."""

    dydx: float
    vault: float
    rpc: float

    def of(self, service: str) -> float:
        return {"dydx": self.dydx, "vault": self.vault, "rpc": self.rpc}[service]


@dataclass(frozen=True)
class Leg:
    """One round trip that cannot start before the one before it has answered."""

    service: str  # "dydx" | "vault" | "rpc"
    what: str


BEFORE_ONBOARDING = (
    Leg("dydx", "look: is the user on dYdX? (Vault and chain reads beside it)"),
    Leg("vault", "take the run's lock"),
    Leg("vault", "take the account's locks (its name's and its address's, side by side)"),
    Leg("rpc", "look again under the locks (chain; Vault beside it)"),
    Leg("vault", "STARK key to Vault before dYdX sees it: ownership metadata"),
    Leg("vault", "STARK key to Vault: data, check-and-set"),
)
ONBOARDING = (Leg("dydx", "POST /v3/onboarding"),)
CHAIN_BEFORE_BLOCK = (
    Leg("dydx", "GET /v3/registration"),
    Leg("rpc", "simulate register and approve, fees, nonce (one batch)"),
    Leg("vault", "journal register and approve"),
    Leg("rpc", "broadcast register and approve, in nonce order"),
    Leg("rpc", "simulate deposit on the pending state"),
    Leg("vault", "journal deposit"),
    Leg("rpc", "broadcast deposit"),
)
RELEASE = (
    Leg("vault", "release the account's locks"),
    Leg("vault", "release the run's lock"),
)
AFTER_BLOCK = (
    Leg("rpc", "receipts (one batch)"),
    Leg("vault", "forget the journal entries"),
    *RELEASE,
)
API_KEYS = (
    Leg("dydx", "POST /v3/api-keys (the named keys side by side)"),
    Leg("vault", "API key to Vault: ownership metadata"),
    Leg("vault", "API key to Vault: data, check-and-set"),
)


@dataclass(frozen=True)
class ApplyFloor:
    latencies: Latencies
    limits: Floor  # v3's rate-limit waits for the requests the run made
    blocks_at: tuple[float, ...]  # when each block was mined, seconds from apply's start
    blocks: int = 1  # block waits that cannot be avoided
    confirmations: int = 0  # blocks on top that apply waits for (the network's)

    def _sum(self, legs: Sequence[Leg]) -> float:
        return sum(self.latencies.of(leg.service) for leg in legs)

    @property
    def onboarded_at(self) -> float:
        """When the last account's onboarding could be answered: its first look is a public
        read, which v3's per-IP budget may hold back."""
        return self.limits.public_seconds + self._sum(BEFORE_ONBOARDING + ONBOARDING)

    @property
    def sent_at(self) -> float:
        """When the last transaction could be broadcast."""
        return self.onboarded_at + self._sum(CHAIN_BEFORE_BLOCK)

    @property
    def mined_at(self) -> float:
        """When the block that takes it (and the confirmations awaited) could be mined."""
        first = bisect.bisect_left(self.blocks_at, self.sent_at)
        last = first + self.blocks - 1 + self.confirmations
        if last >= len(self.blocks_at):
            raise ValueError(
                f"no block observed {self.blocks + self.confirmations} blocks after"
                f" {self.sent_at:.3f} s"
            )
        return self.blocks_at[last]

    @property
    def chain_seconds(self) -> float:
        return self.mined_at + self._sum(AFTER_BLOCK)

    @property
    def api_keys_seconds(self) -> float:
        """The last API key's POST goes no sooner than the account's write budget allows,
        counted from its first write (onboarding, sent one dYdX round trip before its answer)."""
        limits = self.limits
        first_write = self.onboarded_at - self.latencies.dydx
        last_post = max(
            self.onboarded_at,
            first_write + max(limits.writes_seconds, limits.private_reads_seconds),
        )
        return last_post + self._sum(API_KEYS + RELEASE)

    @property
    def seconds(self) -> float:
        return max(self.chain_seconds, self.api_keys_seconds)

    def explain(self) -> list[str]:
        lat = self.latencies

        def legs(part: Sequence[Leg]) -> str:
            return "; ".join(f"{leg.what} {lat.of(leg.service) * 1000:g}" for leg in part)

        return [
            f"round trips (ms): dYdX {lat.dydx * 1000:g}, Vault {lat.vault * 1000:g},"
            f" JSON-RPC {lat.rpc * 1000:g}; CPU counts as free",
            f"to onboarding: {legs(BEFORE_ONBOARDING + ONBOARDING)}"
            f" => {self.onboarded_at * 1000:.0f} ms",
            f"chain: {legs(CHAIN_BEFORE_BLOCK)} => sent at {self.sent_at * 1000:.0f} ms",
            f"blocks: {self.blocks} (register, approve and deposit share one, in nonce order);"
            f" then the network's {self.confirmations} confirmations on top of it, which apply"
            f" waits for (a deposit counts as done only then); the block that gives the last of"
            f" them came at {self.mined_at:.3f} s",
            f"after the block: {legs(AFTER_BLOCK)} => chain branch {self.chain_seconds:.3f} s",
            f"v3 rate limits for the requests made: {self.limits.explain()[-1]}",
            f"API keys after onboarding: {legs(API_KEYS + RELEASE)}"
            f" => {self.api_keys_seconds:.3f} s",
            f"floor = max({self.chain_seconds:.3f}, {self.api_keys_seconds:.3f})"
            f" = {self.seconds:.3f} s",
        ]


def periodic_blocks(first: float, block_time: float, count: int = 64) -> tuple[float, ...]:
    """A block every ``block_time`` seconds from ``first``: to say what a floor would be at
    another block time, for the same phase."""
    return tuple(first + i * block_time for i in range(count))
