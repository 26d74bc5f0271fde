"""One view of the chain head for every waiter of a client (issue #21): waiters wake together
on a new block, one of them polls for all, nobody polls when nobody waits, a wait ends at its
timeout, and closing the client ends every wait."""

from __future__ import annotations

import threading
import time

import pytest

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)
from provisioner.clients.chain import ChainError
from provisioner.clients.chain.head import ChainHead

INTERVAL = 0.02


class Node:
    """``eth_blockNumber`` of a node: counts the calls and how many run at once."""

    def __init__(self, head: int = 100) -> None:
        self.head = head
        self.calls = 0
        self.at_once = 0
        self.most_at_once = 0
        self.failures = 0  # how many polls fail next
        self._lock = threading.Lock()

    def block_number(self) -> int:
        with self._lock:
            self.calls += 1
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            time.sleep(0.002)  # a round trip
            if self.failures:
                self.failures -= 1
                raise ChainError("cannot reach the Ethereum node (test)")
            return self.head
        finally:
            with self._lock:
                self.at_once -= 1


def _waiters(head: ChainHead, count: int, after: int, timeout: float) -> tuple[list, list]:
    woke: list[tuple[int, float]] = []
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            woke.append((head.after(after, timeout), time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=wait) for _ in range(count)]
    for t in threads:
        t.start()
    return threads, [woke, errors]


def test_many_waiters_share_one_poller_and_wake_on_the_new_block() -> None:
    node = Node(100)
    head = ChainHead(node.block_number, interval=INTERVAL)
    assert head.current() == 100
    threads, (woke, errors) = _waiters(head, 30, 100, 5.0)
    time.sleep(0.3)  # 30 waiters through about 15 poll intervals
    assert woke == [] and errors == []
    polls_before = node.calls
    node.head = 101
    mined = time.monotonic()
    for t in threads:
        t.join(5)
    assert errors == [] and [h for h, _ in woke] == [101] * 30
    assert max(at for _, at in woke) - mined < 5 * INTERVAL  # within a poll or so, not 0.25 s each
    assert node.most_at_once == 1  # one poller at a time
    assert polls_before <= 0.3 / INTERVAL + 3  # about one per interval, not one per waiter
    assert node.calls - polls_before <= 3


def test_nobody_polls_while_nobody_waits() -> None:
    node = Node(7)
    head = ChainHead(node.block_number, interval=INTERVAL)
    assert head.after(6, 1.0) == 7
    calls = node.calls
    time.sleep(10 * INTERVAL)
    assert node.calls == calls
    assert head.current() == 7 and node.calls == calls + 1  # the last poll is old: asked again
    assert head.current() == 7 and node.calls == calls + 1  # fresh: answered from it


def test_a_wait_ends_at_its_timeout_with_the_head_unchanged() -> None:
    node = Node(5)
    head = ChainHead(node.block_number, interval=INTERVAL)
    start = time.monotonic()
    assert head.after(5, 0.15) == 5
    took = time.monotonic() - start
    assert 0.15 <= took < 0.5
    assert node.calls <= 0.15 / INTERVAL + 2


def test_closing_ends_every_wait_with_a_chain_error() -> None:
    node = Node(5)
    head = ChainHead(node.block_number, interval=INTERVAL)
    threads, (woke, errors) = _waiters(head, 5, 5, 30.0)
    time.sleep(0.05)
    head.close()
    for t in threads:
        t.join(2)
    assert woke == [] and len(errors) == 5
    assert all(isinstance(e, ChainError) and "closed" in str(e) for e in errors)
    with pytest.raises(ChainError):
        head.current()


def test_a_failed_poll_fails_its_poller_and_another_waiter_polls_again() -> None:
    node = Node(5)
    head = ChainHead(node.block_number, interval=INTERVAL)
    head.current()
    node.failures = 1
    threads, (woke, errors) = _waiters(head, 3, 5, 30.0)
    time.sleep(0.1)
    node.head = 6
    for t in threads:
        t.join(5)
    assert len(errors) == 1 and isinstance(errors[0], ChainError)
    assert [h for h, _ in woke] == [6, 6]  # the others polled on and saw the block


def test_a_reorg_to_a_shorter_chain_wakes_the_waiters_too() -> None:
    node = Node(9)
    head = ChainHead(node.block_number, interval=INTERVAL)
    threads, (woke, errors) = _waiters(head, 3, 9, 5.0)
    time.sleep(0.05)
    node.head = 8
    for t in threads:
        t.join(5)
    assert errors == [] and [h for h, _ in woke] == [8, 8, 8]


def test_the_turn_passes_on_when_its_holder_is_done_and_askers_get_the_next_poll() -> None:
    node = Node(5)
    head = ChainHead(node.block_number, interval=INTERVAL)
    head.current()
    early, (woke_early, _e) = _waiters(head, 1, 5, 0.05)  # holds the turn, then times out
    time.sleep(0.01)
    late, (woke_late, errors) = _waiters(head, 3, 5, 5.0)  # waiting behind it
    for t in early:
        t.join(2)
    time.sleep(0.1)
    node.head = 6
    for t in late:
        t.join(1)
    assert errors == [] and [h for h, _ in woke_late] == [6, 6, 6]  # someone polled on
    asked = time.monotonic()
    assert head.current() == 6 and time.monotonic() - asked < 1.0
