"""Waiting for confirmations (issue #21): the accounts of a run learn the head from one shared
watcher and look at their receipts, in one batch per account, only when a new block came;
after the block that makes them final, every account notices within a poll or so. On a fake
node that mines a block every ``BLOCK_S`` and counts what it is asked."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from support.apply_fakes import STATE, world

from provisioner.apply.context import AccountContext
from provisioner.apply.transactions import await_confirmations
from provisioner.clients.chain import Receipt
from provisioner.clients.chain.head import ChainHead
from provisioner.journal import Journal, StoredTx

BLOCK_S = 0.2
POLL_S = 0.02
ACCOUNTS = 20
CONFIRMATIONS = 2


class TimedNode:
    """Block ``start + n`` comes ``n * BLOCK_S`` after it is made; each transaction is mined in
    the block after the one it was sent in. A ``ChainHead`` of its own, as ChainClient has."""

    def __init__(self, start: int = 50) -> None:
        self.t0 = time.monotonic()
        self.start = start
        self.asked: Counter[str] = Counter()
        self.mined_in: dict[str, int] = {}
        self._lock = threading.Lock()
        self._head = ChainHead(self.block_number, interval=POLL_S)

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.asked[what] += n

    def now(self) -> int:
        return self.start + int((time.monotonic() - self.t0) / BLOCK_S)

    def block_at(self, block: int) -> float:
        return self.t0 + (block - self.start) * BLOCK_S

    def sent(self, tx_hash: str) -> None:
        self.mined_in[tx_hash] = self.now() + 1

    def block_number(self) -> int:
        self._count("eth_blockNumber")
        return self.now()

    def head(self) -> int:
        return self._head.current()

    def head_after(self, block: int, timeout: float) -> int:
        return self._head.after(block, timeout)

    def _receipt(self, tx_hash: str) -> Receipt | None:
        block = self.mined_in[tx_hash]
        return Receipt(tx_hash, 1, block) if block <= self.now() else None

    def receipt(self, tx_hash: str) -> Receipt | None:
        self._count("eth_getTransactionReceipt")
        return self._receipt(tx_hash)

    def receipts(self, tx_hashes: Sequence[str]) -> dict[str, Receipt | None]:
        self._count("receipt batches")
        self._count("eth_getTransactionReceipt", len(tx_hashes))
        return {h: self._receipt(h) for h in tx_hashes}

    def transaction_known(self, tx_hash: str) -> bool:
        self._count("eth_getTransactionByHash")
        return True

    def transaction_counts(self, address: str) -> tuple[int, int]:
        self._count("eth_getTransactionCount")
        return 0, 3

    def transaction_count_at(self, address: str, block: int) -> int:
        self._count("eth_getTransactionCount")
        return 0


def _accounts(node: TimedNode, count: int) -> list[AccountContext]:
    w = world()
    network = replace(w.conn.manifest.network, confirmations=CONFIRMATIONS)
    conn = replace(w.conn, chain=node, manifest=replace(w.conn.manifest, network=network))
    journal = Journal(w.vault, STATE)
    out = []
    for i in range(count):
        ctx = AccountContext(w.spec, conn, journal, receipt_timeout=10.0)  # type: ignore[arg-type]
        sender = f"0x{i + 1:040x}"
        for nonce, intent in enumerate(("register", "approve", "deposit")):
            tx_hash = f"0x{i:032x}{nonce:032x}"
            tx = StoredTx(
                "mm", intent, nonce, tx_hash, "0x02", 0, sender, chain_id=network.chain_id
            )
            journal.record(tx)
            node.sent(tx_hash)
            ctx.unconfirmed.append(tx)
        out.append(ctx)
    return out


def test_accounts_share_the_head_poll_ask_receipts_once_a_block_and_notice_finality_at_once() -> (
    None
):
    node = TimedNode()
    accounts = _accounts(node, ACCOUNTS)
    final_block = node.start + 1 + CONFIRMATIONS  # mined in start + 1, then 2 on top
    done: list[float] = []
    errors: list[BaseException] = []

    def wait(ctx: AccountContext) -> None:
        try:
            await_confirmations(ctx)
            done.append(time.monotonic())
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=wait, args=(ctx,)) for ctx in accounts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [] and len(done) == ACCOUNTS
    waited = max(done) - node.t0
    # the head: about one poll per interval for all the accounts together
    assert node.asked["eth_blockNumber"] <= waited / POLL_S + 5, node.asked
    # receipts: one batch per account per block it saw (4: sent, mined, 2 on top), none alone
    assert node.asked["receipt batches"] <= ACCOUNTS * (CONFIRMATIONS + 3), node.asked
    assert node.asked["eth_getTransactionReceipt"] == 3 * node.asked["receipt batches"]
    # after the block that makes them final, each account noticed within a few polls
    assert max(done) - node.block_at(final_block) < 5 * POLL_S + 0.05
    assert all(
        ctx.journal.transactions(ctx.chain_id, f"0x{i + 1:040x}") == []
        for i, ctx in enumerate(accounts)
    )
