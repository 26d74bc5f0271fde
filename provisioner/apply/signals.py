"""SIGTERM and SIGINT during apply (a CI cancel, a pod eviction, Ctrl-C): drain, then stop.

The first signal sets the drain flag: no new step starts, the calls in flight finish (or
are abandoned at the drain deadline: the journal is written before every side effect, so
the next run settles them), the leases are released, and the run says what it did and
what remains, exiting 128 + the signal's number (143 for SIGTERM, 130 for SIGINT). The
same signal again (a second Ctrl-C) aborts at once, as a SIGKILL would; the next run on
this host takes the leases over at once, since their holder is gone. Another signal after
the first (a CI runner escalating from SIGINT to SIGTERM) cuts the drain short instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

from provisioner.errors import ProvisionerError

# From the signal to the exit: within the 30 s a CI runner or Kubernetes grants by default,
# with room for releasing the leases and printing the summary.
DRAIN_SECONDS = 20.0
# GitHub Actions cancels with SIGINT, then SIGTERM 7.5 s later, then kills 2.5 s after that.
HURRY_SECONDS = 1.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_code(signum: int) -> int:
    return 128 + signum


class Interrupted(ProvisionerError):
    """The run stopped on a signal before it finished; exits 128 + the signal's number.
    ``abandoned``: calls were still in flight at the drain deadline (their threads are left
    to the process's exit)."""

    def __init__(self, signum: int, message: str, *, abandoned: bool = False) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = exit_code(signum)
        self.abandoned = abandoned


class Drain:
    """The drain flag of one run, set by the first SIGTERM or SIGINT (or ``request``)."""

    def __init__(
        self,
        *,
        grace: float = DRAIN_SECONDS,
        write: Callable[[str], None] | None = None,
        abort: Callable[[int], None] = os._exit,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grace = grace
        self._write = write or (lambda text: os.write(2, text.encode()) and None)
        self._abort = abort
        self._monotonic = monotonic
        self._event = threading.Event()
        self.signum: int | None = None
        self._since = 0.0
        self._at_once = True  # until ``draining``: nothing in flight, stop where we are

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "a stop request"

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum or signal.SIGTERM)

    def since(self) -> float:
        """Seconds since the first signal (0 before any)."""
        return self._monotonic() - self._since if self.requested else 0.0

    def left(self) -> float:
        """Seconds until the calls still in flight are abandoned (inf before any signal)."""
        if not self.requested:
            return float("inf")
        return self._since + self.grace - self._monotonic()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking early (True) when a drain is requested."""
        return self._event.wait(timeout)

    def request(self, signum: int) -> None:
        """The first call starts the drain (before ``begin_steps``: raises Interrupted, as no
        step is in flight that could be left half done). The same signal again aborts the
        process at once; another one (a CI runner's SIGTERM after its SIGINT) cuts the drain
        to ``HURRY_SECONDS``: the calls in flight are abandoned, the leases released."""
        name = signal.Signals(signum).name
        if self.requested and signum == self.signum:
            self._write(
                f"\n{name} again: aborting at once; the next apply finishes what this one left\n"
            )
            self._abort(exit_code(signum))
            return
        if self.requested:
            self.grace = min(self.grace, self.since() + HURRY_SECONDS)
            self._write(f"\n{name}: abandoning the calls in flight, releasing the leases\n")
            return
        self.signum, self._since = signum, self._monotonic()
        self._event.set()
        self._write(
            f"\n{name}: finishing the calls in flight, starting no new step "
            f"(stopping within {self.grace:.0f}s; send it again to abort at once)\n"
        )
        if self._at_once:
            raise self.interrupted("no step had started, nothing was done")

    def begin_steps(self) -> None:
        """From now on a signal only sets the flag, and the executor drains."""
        self._at_once = False

    def interrupted(self, message: str, *, abandoned: bool = False) -> Interrupted:
        return Interrupted(self.signum or signal.SIGTERM, message, abandoned=abandoned)

    @contextlib.contextmanager
    def installed(self) -> Iterator[Drain]:
        """Handle SIGTERM and SIGINT with ``request`` inside the block, then restore the
        handlers found. Only the main thread may install handlers: elsewhere nothing changes."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request(signum)

        previous = {s: signal.signal(s, handler) for s in SIGNALS}
        try:
            yield self
        finally:
            for s, old in previous.items():
                signal.signal(s, old)
