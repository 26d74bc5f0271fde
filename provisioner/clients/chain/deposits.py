"""USDC deposited per (starkKey, vaultId), summed from the exchange's LogDeposit events, cached.

A scan is kept per ``from_block``; a refresh reads only the blocks after the previous
scan's final ones, and reads again the last ``FINAL_AFTER_BLOCKS``, where a reorg may
still drop an event.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from provisioner.clients.chain.abi import LOG_DEPOSIT_TOPIC, hex_bytes
from provisioner.clients.chain.errors import ChainError, RpcError
from provisioner.clients.chain.rpc import Call, JsonRpc, quantity
from provisioner.ethaddress import to_checksum
from provisioner.manifest.model import NetworkSpec

LOG_RANGE_BLOCKS = 10_000
LOG_RANGES_PER_REQUEST = 20
FINAL_AFTER_BLOCKS = 64  # deposit events older than this are not re-read (reorgs are shallower)
_LOG_LIMIT_HINTS = ("range", "limit", "too many", "more than", "exceed", "too large")

Deposit = tuple[int, tuple[int, int], int]  # (block, (starkKey, vaultId), quantized amount)


@dataclass(frozen=True)
class _Scan:
    """Totals from a scan: ``settled`` up to block ``final_to``, then each recent event."""

    settled: dict[tuple[int, int], int]
    final_to: int
    recent: tuple[Deposit, ...]  # after final_to
    head: int

    def totals(
        self, confirmations: int = 0
    ) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
        """(confirmed, unconfirmed): events with ``confirmations`` blocks on top, and the others."""
        confirmed = dict(self.settled)
        unconfirmed: dict[tuple[int, int], int] = {}
        for block, key, quantized in self.recent:
            into = confirmed if self.head - block >= confirmations else unconfirmed
            into[key] = into.get(key, 0) + quantized
        return confirmed, unconfirmed


class DepositScanner:
    """Thread-safe. Refreshes are shared: a caller that asks for one gets the first scan that
    *started* after it asked, so many accounts refreshing at once (apply's deposit steps, side
    by side) cost one scan in flight at a time, not one each in turn, and each still sees
    every event mined before it asked."""

    def __init__(self, rpc: JsonRpc, network: NetworkSpec) -> None:
        self._rpc = rpc
        self._network = network
        self._exchange = to_checksum(network.exchange_contract)
        self._cond = threading.Condition()
        self._scans: dict[
            int, tuple[int, _Scan]
        ] = {}  # from_block -> (ticket it started with, scan)
        self._running: set[int] = set()  # from_blocks with a scan in flight
        self._tickets = 0  # scans started so far

    def deposits(self, from_block: int = 0, *, refresh: bool = False) -> dict[tuple[int, int], int]:
        """Quantized totals per (starkKey, vaultId); ``refresh`` reads the blocks since the last scan."""
        return self.totals(from_block, refresh=refresh, confirmations=0)[0]

    def totals(
        self, from_block: int = 0, *, refresh: bool = False, confirmations: int | None = None
    ) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
        """(confirmed, unconfirmed) totals: events with ``confirmations`` blocks on top (default:
        the network's), and the younger ones, which a reorg may still take away."""
        scan = self._current(from_block, refresh)
        wanted = self._network.confirmations if confirmations is None else confirmations
        return scan.totals(wanted)

    def _current(self, from_block: int, refresh: bool) -> _Scan:
        with self._cond:
            asked = self._tickets if refresh else 0  # a scan started at or after this will do
            while True:
                stored = self._scans.get(from_block)
                if stored is not None and stored[0] >= asked:
                    return stored[1]
                if from_block not in self._running:
                    break
                self._cond.wait()
            ticket = self._tickets
            self._tickets += 1
            self._running.add(from_block)
            previous = stored[1] if stored is not None else None
        try:
            scan = self._scan(from_block, previous)
        except BaseException:
            with self._cond:  # a waiter starts its own
                self._running.discard(from_block)
                self._cond.notify_all()
            raise
        with self._cond:
            self._scans[from_block] = (ticket, scan)
            self._running.discard(from_block)
            self._cond.notify_all()
        return scan

    def block_number(self) -> int:
        return quantity(self._rpc.call("eth_blockNumber", []), "eth_blockNumber")

    def _scan(self, from_block: int, previous: _Scan | None) -> _Scan:
        latest = self.block_number()
        start = from_block if previous is None else previous.final_to + 1
        depth = max(FINAL_AFTER_BLOCKS, self._network.confirmations)
        final_to = max(latest - depth, start - 1)
        settled = dict(previous.settled) if previous is not None else {}
        recent: list[Deposit] = []
        for block, key, quantized in self.logs(start, latest):
            if block <= final_to:
                settled[key] = settled.get(key, 0) + quantized
            else:
                recent.append((block, key, quantized))
        return _Scan(settled=settled, final_to=final_to, recent=tuple(recent), head=latest)

    def logs(self, first: int, latest: int) -> list[Deposit]:
        """Every USDC LogDeposit from block ``first`` to ``latest``; ranges the node finds too
        large are halved until it answers."""
        ranges = [
            (start, min(start + LOG_RANGE_BLOCKS - 1, latest))
            for start in range(first, latest + 1, LOG_RANGE_BLOCKS)
        ]
        found: list[Deposit] = []
        while ranges:
            group, ranges = ranges[:LOG_RANGES_PER_REQUEST], ranges[LOG_RANGES_PER_REQUEST:]
            calls: list[Call] = [
                (
                    "eth_getLogs",
                    [
                        {
                            "address": self._exchange,
                            "topics": [LOG_DEPOSIT_TOPIC],
                            "fromBlock": hex(a),
                            "toBlock": hex(b),
                        }
                    ],
                )
                for a, b in group
            ]
            retry_smaller: list[tuple[int, int]] = []
            for (a, b), result in zip(group, self._rpc.batch(calls), strict=True):
                if isinstance(result, RpcError):
                    if b > a and any(h in result.message.lower() for h in _LOG_LIMIT_HINTS):
                        middle = (a + b) // 2
                        retry_smaller += [(a, middle), (middle + 1, b)]
                        continue
                    raise ChainError(
                        f"reading deposit events (blocks {a}-{b}) failed: {result.message}"
                    )
                if not isinstance(result, list):  # a null answer is not "no events"
                    raise ChainError(
                        f"reading deposit events (blocks {a}-{b}): the node answered {result!r}, not a list"
                    )
                for log in result:
                    deposit = self._deposit(log)
                    if deposit is not None:
                        found.append(deposit)
            ranges = retry_smaller + ranges
        return found

    def _deposit(self, log: dict[str, Any]) -> Deposit | None:
        if log.get("removed") or str(log.get("address", "")).lower() != self._exchange.lower():
            return None
        topics = log.get("topics") or []
        if not topics or str(topics[0]).lower() != LOG_DEPOSIT_TOPIC:
            return None
        data = hex_bytes(log.get("data"))
        if data is None or len(data) != 6 * 32:
            raise ChainError(f"malformed LogDeposit in transaction {log.get('transactionHash')}")
        _depositor, stark_key, vault_id, asset_type, _amount, quantized = (
            int.from_bytes(data[i : i + 32], "big") for i in range(0, 6 * 32, 32)
        )
        if asset_type != self._network.collateral_asset_id:
            return None
        block = quantity(log.get("blockNumber"), "LogDeposit blockNumber")
        return block, (stark_key, vault_id), quantized
