"""One lease in Vault KV v2 (``Lease``), renewed with check-and-set by a ``Heartbeat``,
checked before every side effect (``Lease.check``, the fence); see apply/lock.py for the
locks a run holds and the rules for taking one over."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from provisioner.apply.holder import SYSTEM_CLOCK, Clock, Process
from provisioner.clients.vault import CasConflict, VaultClient, VaultError
from provisioner.errors import ProvisionerError

DEFAULT_TTL_SECONDS = 60
MIN_TTL_SECONDS = 3


class LockHeld(ProvisionerError):
    """Another live run holds the lease this run needs."""


class LeaseLost(ProvisionerError):
    """This run no longer holds its lease (taken over, lapsed, or released): it must not act."""


@dataclass(frozen=True)
class LeaseRecord:
    """What a lease path holds. An account lock's ``run`` names the run lease it lives by.
    ``ended_by``: the run that ended this run lease with ``--force-unlock`` (its holder can no
    longer renew it; for everyone else it holds until it expires, as its holder may still be
    at work until its next renewal)."""

    id: str
    holder: Process
    acquired_at: float
    expires_at: float
    ttl_seconds: int
    run: str = ""
    ended_by: str = ""

    def remaining(self, now: float) -> float:
        return self.expires_at - now

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def describe(self, now: float) -> str:
        age = max(0, int(now - self.acquired_at))
        left = self.remaining(now)
        state = f"expires in {left:.0f}s" if left > 0 else f"expired {-left:.0f}s ago"
        ended = f" (ended by --force-unlock of run {self.ended_by})" if self.ended_by else ""
        return f"lease {self.id} held by {self.holder.describe()} for {age}s, {state}{ended}"

    def record(self) -> dict[str, str]:
        h = self.holder
        data = {
            "id": self.id,
            "holder": h.describe(),
            "user": h.user,
            "host": h.host,
            "boot_id": h.boot_id,
            "pid_ns": h.pid_ns,
            "pid": str(h.pid),
            "pid_start": h.start,
            "acquired_at": str(self.acquired_at),
            "expires_at": str(self.expires_at),
            "ttl_seconds": str(self.ttl_seconds),
        }
        if self.run:
            data["run"] = self.run
        if self.ended_by:
            data["ended_by"] = self.ended_by
        return data

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> LeaseRecord | None:
        """None for a released lease (its data emptied)."""
        if not data.get("id"):
            return None
        acquired = float(data.get("acquired_at") or 0)
        ttl = int(data.get("ttl_seconds") or 0)
        holder = Process(
            user=str(data.get("user", "")),
            host=str(data.get("host", "")),
            boot_id=str(data.get("boot_id", "")),
            pid_ns=str(data.get("pid_ns", "")),
            pid=int(data.get("pid") or 0),
            start=str(data.get("pid_start", "")),
        )
        if not holder.host:  # a lock written before leases: its holder as one line
            user, _, rest = str(data.get("holder", "")).partition("@")
            host, _, pid = rest.partition(" pid ")
            holder = Process(user, host, "", "", int(pid) if pid.isdigit() else 0, "")
        return cls(
            id=str(data["id"]),
            holder=holder,
            acquired_at=acquired,
            expires_at=float(data.get("expires_at") or acquired + ttl),
            ttl_seconds=ttl,
            run=str(data.get("run", "")),
            ended_by=str(data.get("ended_by", "")),
        )


@dataclass(frozen=True)
class Takeover:
    """A lease this run took from another: whose, and why that was safe."""

    path: str
    previous: LeaseRecord
    reason: str

    def describe(self) -> str:
        return (
            f"took over {self.path} from {self.previous.holder.describe()} "
            f"(lease {self.previous.id}): {self.reason}"
        )


def why_free(held: LeaseRecord, now: float, here: Process, force_unlock: str | None) -> str | None:
    """Why another run's lease may be taken now; None when it may not."""
    if force_unlock is not None and force_unlock == held.id:
        return "--force-unlock named it"
    if held.holder.gone(here):
        return f"its process, pid {held.holder.pid} on this host, no longer exists"
    if held.expired(now):
        return f"it expired {now - held.expires_at:.0f}s ago"
    return None


def refusal(held: LeaseRecord, now: float, here: Process, what: str) -> str:
    """Why ``held`` cannot be taken, and what to do: wait, or, for a holder on another host
    only, ``--force-unlock`` (a gone holder on this host would have been taken over)."""
    text = f"{what}: {held.describe(now)}"
    if held.holder.same_host(here):
        return (
            f"{text}; its process runs on this host: let it finish, "
            "or stop it (SIGTERM releases its locks)"
        )
    return (
        f"{text}; run again once it expires (in {held.remaining(now):.0f}s), or, if its holder "
        f"is gone, now with --force-unlock {held.id}"
    )


class Lease:
    """The run lease: taken, renewed (by a ``Heartbeat`` and by ``check``), checked before each
    side effect, released. Thread-safe."""

    def __init__(
        self,
        vault: VaultClient,
        path: str,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        *,
        clock: Clock = SYSTEM_CLOCK,
        me: Process | None = None,
    ) -> None:
        self.vault = vault
        self.path = path
        self.ttl = ttl_seconds
        self.clock = clock
        self.me = me or Process.current()
        self.record: LeaseRecord | None = None
        self.takeover: Takeover | None = None
        self._version = 0
        self._deadline = 0.0  # by the monotonic clock; no action at or past it
        self._lost: str | None = None
        self._renew_error: str | None = None
        self._guard = threading.RLock()

    @property
    def id(self) -> str:
        if self.record is None:
            raise LeaseLost(f"the lease at {self.path} was never taken")
        return self.record.id

    @property
    def margin(self) -> float:
        """The time a holder must have left to act: a third of the duration."""
        return self.ttl / 3

    def current(self) -> tuple[LeaseRecord | None, int]:
        found = self.vault.read_state(self.path)
        if found is None:
            return None, 0
        data, version = found
        return LeaseRecord.parse(data), version

    def acquire(
        self,
        force_unlock: str | None = None,
        *,
        wait: Callable[[float], bool] | None = None,
        on_wait: Callable[[str], None] = lambda _m: None,
    ) -> LeaseRecord:
        """Take the lease: free, expired, left by a gone process on this host, or named by
        ``force_unlock``. With ``wait`` (sleeps up to N seconds, True when told to stop), a
        live lease is watched until it expires (then taken: its holder stopped renewing it:
        a lost runner, a paused process) or is renewed (then refused: its holder is at work),
        never longer than a lease's duration."""
        seen: int | None = None
        while True:
            held, version = self.current()
            now = self.clock.wall()
            if held is None:
                break
            why = why_free(held, now, self.me, force_unlock)
            if why is not None:
                self.takeover = Takeover(self.path, held, why)
                break
            left = held.remaining(now)
            patient = (
                wait is not None
                and seen in (None, version)
                and left <= max(self.ttl, DEFAULT_TTL_SECONDS)
            )
            if not patient:
                raise LockHeld(refusal(held, now, self.me, "another apply holds this manifest"))
            assert wait is not None
            if seen is None:
                on_wait(
                    f"waiting up to {left:.0f}s for {held.describe(now)}: "
                    "taken once it expires, refused if it is renewed"
                )
            seen = version
            if wait(min(1.0, max(0.05, left))):
                raise LockHeld(f"stopped while waiting for {held.describe(self.clock.wall())}")
        record = LeaseRecord(
            id=uuid.uuid4().hex[:12],
            holder=self.me,
            acquired_at=now,
            expires_at=now + self.ttl,
            ttl_seconds=self.ttl,
        )
        started = self.clock.monotonic()
        try:
            written = self.vault.write_state(self.path, record.record(), cas=version)
        except CasConflict:
            raise LockHeld("another apply took the lock at the same moment; try again") from None
        with self._guard:
            self.record, self._version = record, written
            self._deadline = started + self.ttl
            self._lost = None
        return record

    def remaining(self) -> float:
        """Seconds this holder may still act (<= 0: lapsed): by its own monotonic clock, and
        by the expiry it wrote, whichever is sooner (a clock stepped forward counts too)."""
        with self._guard:
            left = self._deadline - self.clock.monotonic()
            if self.record is not None:
                left = min(left, self.record.expires_at - self.clock.wall())
            return left

    def renew(self) -> None:
        """Push the expiry a full duration ahead (check-and-set against our last write).
        LeaseLost if it lapsed or another run wrote the path; VaultError if Vault failed (the
        lease holds until it lapses)."""
        with self._guard:
            self._raise_if_lost()
            assert self.record is not None
            left = self.remaining()
            started = self.clock.monotonic()
            if left <= 0:
                self._lose(f"it lapsed {-left:.1f}s ago without being renewed")
            now = self.clock.wall()
            renewed = LeaseRecord(
                id=self.record.id,
                holder=self.record.holder,
                acquired_at=self.record.acquired_at,
                expires_at=now + self.ttl,
                ttl_seconds=self.ttl,
            )
            try:
                written = self.vault.write_state(self.path, renewed.record(), cas=self._version)
            except CasConflict:
                taker, _ = self.current()
                if taker is not None and taker.id == self.record.id and taker.ended_by:
                    self._lose(
                        f"run {taker.ended_by} took one of its account locks with "
                        "--force-unlock and ended it"
                    )
                who = (
                    f"lease {taker.id} of {taker.holder.describe()}"
                    if taker
                    else "a release by another run"
                )
                self._lose(f"another run took it over ({who})")
            except VaultError as exc:
                self._renew_error = str(exc)
                raise
            self.record, self._version = renewed, written
            self._deadline = started + self.ttl
            self._renew_error = None

    def check(self) -> None:
        """The fence before a side effect: the lease is ours with a third of its duration to
        spare, renewed first if less is left. LeaseLost otherwise, and for good."""
        with self._guard:
            self._raise_if_lost()
            left = self.remaining()
            if left >= self.margin:
                return
            if left <= 0:
                self._lose(f"it lapsed {-left:.1f}s ago without being renewed")
            try:
                self.renew()
            except VaultError:
                self._lose(f"it could not be renewed with {left:.1f}s left")

    def release(self) -> None:
        """Give the lease back. A lease lost meanwhile is not written at all: another run may
        hold it, and a run that lost its lease writes nothing more."""
        with self._guard:
            record, version, lost = self.record, self._version, self._lost
            self._lost = lost or "it was released"
            self.record = None
        if record is None or lost is not None:
            return
        with contextlib.suppress(CasConflict):
            self.vault.write_state(self.path, {}, cas=version)

    def lost(self) -> str | None:
        """Why this lease may no longer be acted on, or None."""
        with self._guard:
            return self._lost

    def heartbeat(self, on_error: Callable[[str], None] = lambda _m: None) -> Heartbeat:
        return Heartbeat(self, on_error)

    def _raise_if_lost(self) -> None:
        if self._lost is not None:
            raise LeaseLost(f"this run no longer holds {self.path}: {self._lost}")
        if self.record is None:
            raise LeaseLost(f"the lease at {self.path} was never taken")

    def _lose(self, why: str) -> None:
        self._lost = (
            why if self._renew_error is None else f"{why}; last renewal: {self._renew_error}"
        )
        raise LeaseLost(f"this run no longer holds {self.path}: {self._lost}")


class Heartbeat:
    """Renews a lease every third of its duration on a thread of its own, from ``start`` to
    ``stop``; a renewal that fails is told to ``on_error`` and tried again at the next beat,
    and ``Lease.check`` says it once the lease is lost."""

    def __init__(self, lease: Lease, on_error: Callable[[str], None]) -> None:
        self.lease = lease
        self.on_error = on_error
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)  # a renewal stuck in a call must not hold up the exit

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _beat(self) -> None:
        interval = self.lease.ttl / 3
        while not self._stop.wait(interval):
            try:
                self.lease.renew()
            except LeaseLost as exc:
                self._note(str(exc))
                return
            except VaultError as exc:
                self._note(f"renewing {self.lease.path}: {exc}")
                interval = max(0.5, min(interval, self.lease.remaining() / 3))
            else:
                interval = self.lease.ttl / 3

    def _note(self, message: str) -> None:
        self.errors.append(message)
        self.on_error(message)
