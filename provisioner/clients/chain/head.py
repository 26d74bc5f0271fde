"""The chain head as one view for every waiter of a client: one ``eth_blockNumber`` poller.

Waiting for confirmations is waiting for new blocks. Fifty accounts that each asked the node
for the head every 0.25 s sent hundreds of requests per block and still noticed the block
that made them final up to 0.25 s late each; here the waiters share one poll every
``interval`` and are woken together as soon as it sees a new number.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from provisioner.clients.chain.errors import ChainError

HEAD_POLL_S = 0.05


class ChainHead:
    """The latest block number as last polled, shared by the threads that wait on it.

    No thread of its own, so nothing polls while nobody waits: a waiter that finds nobody
    polling takes the turn, asks the node at most every ``interval`` seconds, wakes everyone
    when the number changes, and hands the turn to another waiter when its own wait is over.
    A poll that fails raises in the waiter that made it (the next waiter polls again)."""

    def __init__(
        self,
        block_number: Callable[[], int],
        *,
        interval: float = HEAD_POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._block_number = block_number
        self._interval = interval
        self._clock = clock
        self._changed = threading.Condition()
        self._head: int | None = None
        self._polled_at = -math.inf
        self._turn_taken = False  # a waiter is polling, or sleeping until its next poll is due
        self._askers = 0  # waiters in ``current``: woken by every poll, not only a new number
        self._closed = False
        self.polls = 0  # for tests and benchmarks

    def current(self) -> int:
        """The head as of at most one poll interval ago: cached, or asked now (once for all
        who ask meanwhile)."""
        asked = self._clock()
        with self._changed:
            self._askers += 1
            try:
                return self._until(
                    lambda _head: self._polled_at >= asked - self._interval, math.inf
                )
            finally:
                self._askers -= 1

    def after(self, block: int, timeout: float) -> int:
        """Block until the head is no longer ``block`` (a new block; or a lower number: a reorg
        to a shorter chain) or ``timeout`` seconds passed; the head then."""
        return self._until(lambda head: head != block, self._clock() + max(timeout, 0.0))

    def close(self) -> None:
        """Wake every waiter with a ChainError: the client is closed, nobody will poll."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _until(self, done: Callable[[int], bool], deadline: float) -> int:
        with self._changed:
            mine = False  # whether this waiter holds the polling turn
            try:
                while True:
                    if self._closed:
                        raise ChainError("the chain client was closed while waiting for a block")
                    now = self._clock()
                    head = self._head
                    if head is not None and (done(head) or now >= deadline):
                        return head
                    if not mine and self._turn_taken:
                        self._wait(deadline - now)
                        continue
                    mine = self._turn_taken = True
                    due = self._polled_at + self._interval - now
                    if due > 0 and head is not None:
                        self._wait(min(due, deadline - now))
                        continue
                    self._poll()
            finally:
                if mine:
                    self._turn_taken = False
                    # all look again: one whose wait is over would not pass the turn on
                    self._changed.notify_all()

    def _poll(self) -> None:
        """Ask the node, the lock released meanwhile; wake everyone on a new number. The next
        poll is due ``interval`` after this one started: a round trip does not stretch it."""
        started = self._clock()
        self._changed.release()
        try:
            head = self._block_number()
        finally:
            self._changed.acquire()
            self._polled_at = started
            self.polls += 1
        if head != self._head or self._askers:
            self._head = head
            self._changed.notify_all()

    def _wait(self, seconds: float) -> None:
        self._changed.wait(None if math.isinf(seconds) else max(seconds, 0.0))
