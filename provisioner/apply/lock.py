"""Apply locks as leases in Vault KV v2, written with check-and-set: one per run, one per account.

The run lease (``locks/manifest-<digest>``, ``-shard-I-of-N`` when sharded) keeps two
applies of one manifest and shard apart and says who is at it; each shard has its own,
so the machines of a CI matrix or an Indexed Job never wait for each other. The account
locks (``locks/accounts/<name>``) keep overlapping runs apart whatever they were started
with (another shard count, ``--target``, a rerun elsewhere): a run takes one for every
account it has work for before it looks again and acts; an account another run holds is
left alone and reported. Locks are taken only when there is work, so a converged apply
writes nothing.

A lease holds for a short duration (``--lock-ttl``, 60 s by default) and its holder
renews it every third of that (``Heartbeat``), however long the apply takes. An account
lock names the run lease it belongs to and lives as long as that lease does (etcd's keys
attached to a session lease), so one renewal keeps all of a run's locks. A lease may be
taken by another run once it has expired, or at once by a run on the same host when its
holder's process no longer exists (host, boot, pid namespace, pid and the process's start
time are recorded, so a reused pid is not mistaken for the holder). ``--force-unlock ID``
takes over a live lease; it is meant for a holder on another host known to be gone.

Fencing: ``Lease.check()`` before every side effect. A holder acts only while its lease
has at least a third of its duration left by its own monotonic clock, renewing first when
less is left; a lease that lapsed is never renewed again, so a run paused past its expiry
(SIGSTOP, a frozen VM) finds on waking that it lost it, raises ``LeaseLost`` and does
nothing more. Takers judge expiry by their own wall clock against the expiry the holder
wrote: the third of the duration is the room for clock skew between hosts.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from provisioner.clients.vault import CasConflict, VaultClient, VaultError
from provisioner.errors import ProvisionerError

DEFAULT_TTL_SECONDS = 60
MIN_TTL_SECONDS = 3


class LockHeld(ProvisionerError):
    """Another live run holds the lease this run needs."""


class LeaseLost(ProvisionerError):
    """This run no longer holds its lease (taken over, lapsed, or released): it must not act."""


class Clock(Protocol):
    """Wall time (written into leases, compared across hosts) and monotonic time (the holder's
    own deadline, which a paused process or a clock step cannot stretch)."""

    def wall(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        # CLOCK_BOOTTIME goes on while the machine sleeps, where CLOCK_MONOTONIC stops: a
        # laptop or VM suspended past its lease must find it lapsed on waking
        boottime = getattr(time, "CLOCK_BOOTTIME", None)
        return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


SYSTEM_CLOCK = SystemClock()


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks after boot, /proc/<pid>/stat field 22);
    None when there is no such process, or only its zombie. "" when /proc cannot tell."""
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return ""
        return ""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or parentheses itself
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


@dataclass(frozen=True)
class Process:
    """Who holds a lease: enough to tell, on the same host, whether that process still runs."""

    user: str
    host: str
    boot_id: str  # a host that rebooted runs none of the processes it had
    pid_ns: str  # containers on one kernel number their processes apart
    pid: int
    start: str  # "" when unknown

    @classmethod
    def current(cls) -> Process:
        try:
            pid_ns = os.readlink("/proc/self/ns/pid")
        except OSError:
            pid_ns = ""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        pid = os.getpid()
        return cls(
            user=user,
            host=socket.gethostname(),
            boot_id=_read("/proc/sys/kernel/random/boot_id"),
            pid_ns=pid_ns,
            pid=pid,
            start=process_start(pid) or "",
        )

    def same_host(self, other: Process) -> bool:
        """Both in one process namespace of one boot of one host: pids mean the same there."""
        return bool(self.boot_id) and (self.host, self.boot_id, self.pid_ns) == (
            other.host,
            other.boot_id,
            other.pid_ns,
        )

    def gone(self, here: Process) -> bool:
        """True only when certain: on ``here``'s host, and the process no longer exists (or its
        pid now belongs to a process started at another time)."""
        if not self.same_host(here):
            return False
        start = process_start(self.pid)
        return start is None or bool(self.start and start and start != self.start)

    def describe(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid}"


@dataclass(frozen=True)
class LeaseRecord:
    """What a lease path holds. An account lock's ``run`` names the run lease it lives by."""

    id: str
    holder: Process
    acquired_at: float
    expires_at: float
    ttl_seconds: int
    run: str = ""

    def remaining(self, now: float) -> float:
        return self.expires_at - now

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def describe(self, now: float) -> str:
        age = max(0, int(now - self.acquired_at))
        left = self.remaining(now)
        state = f"expires in {left:.0f}s" if left > 0 else f"expired {-left:.0f}s ago"
        return f"lease {self.id} held by {self.holder.describe()} for {age}s, {state}"

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


def _why_free(held: LeaseRecord, now: float, here: Process, force_unlock: str | None) -> str | None:
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


def lock_path(state_path: str, manifest_path: str, shard: tuple[int, int] | None = None) -> str:
    """The run lease of a manifest (by absolute path) and, for ``--shard I/N``, of that shard."""
    digest = hashlib.sha256(os.path.abspath(manifest_path).encode()).hexdigest()[:16]
    suffix = f"-shard-{shard[0]}-of-{shard[1]}" if shard is not None else ""
    return f"{state_path}/locks/manifest-{digest}{suffix}"


def account_lock_path(state_path: str, account: str) -> str:
    return f"{state_path}/locks/accounts/{account}"


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
            why = _why_free(held, now, self.me, force_unlock)
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


@dataclass(frozen=True)
class Busy:
    """An account another live run holds: that run's lease, and what to tell the user."""

    holder: LeaseRecord
    message: str


class AccountLocks:
    """The account locks of one run, each naming its run lease; thread-safe."""

    def __init__(self, vault: VaultClient, state_path: str, run: Lease) -> None:
        self.vault = vault
        self.state_path = state_path
        self.run = run
        self.takeovers: list[Takeover] = []
        self._held: dict[str, int] = {}  # account -> version of our lock record
        self._guard = threading.Lock()

    @property
    def held(self) -> frozenset[str]:
        with self._guard:
            return frozenset(self._held)

    def check(self, account: str) -> None:
        """The fence for one account: its lock is ours and our run lease holds (``Lease.check``)."""
        self.run.check()
        with self._guard:
            if account not in self._held:
                raise LeaseLost(f"this run does not hold the lock of account {account}")

    def acquire(
        self, accounts: Iterable[str], *, force_unlock: str | None = None, parallelism: int = 16
    ) -> dict[str, Busy]:
        """Take the lock of every account that is free, ours, or held by a run that is gone
        (its lease expired, or its process on this host no longer exists) or that
        ``force_unlock`` names; return the others (those accounts must be left alone)."""
        names = list(dict.fromkeys(accounts))
        with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(names) or 1))) as pool:
            outcomes = list(pool.map(lambda n: self._take(n, force_unlock), names))
        return {name: busy for name, busy in zip(names, outcomes, strict=True) if busy}

    def release(self, *, parallelism: int = 16) -> None:
        """Release what this run holds (before its run lease); a lock another run took
        meanwhile is left to it, and a run that lost its lease writes nothing."""
        with self._guard:
            held, self._held = dict(self._held), {}
        if not held or self.run.lost() is not None:
            return
        with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(held)))) as pool:
            list(pool.map(lambda item: self._give_back(*item), held.items()))

    def _take(self, account: str, force_unlock: str | None) -> Busy | None:
        path = account_lock_path(self.state_path, account)
        found = self.vault.read_state(path)
        data, version = found if found is not None else ({}, 0)
        other = LeaseRecord.parse(data)
        now = self.run.clock.wall()
        takeover = None
        if other is not None and other.id != self.run.id:
            why, live = self._why_free(other, now, force_unlock)
            if why is None:
                what = "left alone, another apply works on it"
                return Busy(live, refusal(live, now, self.run.me, what))
            takeover = Takeover(path, other, why)
        run = self.run.record
        if run is None:
            raise LeaseLost("this run holds no lease to lock accounts under")
        mine = LeaseRecord(run.id, run.holder, now, run.expires_at, run.ttl_seconds, self.run.path)
        try:
            written = self.vault.write_state(path, mine.record(), cas=version)
        except CasConflict:  # another run took it between our read and our write
            found = self.vault.read_state(path)
            taker = LeaseRecord.parse(found[0]) if found is not None else None
            what = "left alone, another apply took it at the same moment"
            return Busy(taker or mine, f"{what}: {taker.describe(now)}" if taker else what)
        with self._guard:
            self._held[account] = written
            if takeover is not None:
                self.takeovers.append(takeover)
        return None

    def _why_free(
        self, other: LeaseRecord, now: float, force_unlock: str | None
    ) -> tuple[str | None, LeaseRecord]:
        """Why another run's account lock may be taken (None: it may not), and the lease it
        lives by: its run lease, as that run keeps renewing it."""
        if force_unlock is not None and force_unlock == other.id:
            return "--force-unlock named its run", other
        run = other
        if other.run:
            found = self.vault.read_state(other.run)
            owner = LeaseRecord.parse(found[0]) if found is not None else None
            if owner is None or owner.id != other.id:
                return "its run no longer holds a lease", other
            run = owner
        why = _why_free(run, now, self.run.me, None)
        return (None if why is None else f"its run's lease {run.id}: {why}"), run

    def _give_back(self, account: str, version: int) -> None:
        with contextlib.suppress(CasConflict):
            self.vault.write_state(account_lock_path(self.state_path, account), {}, cas=version)
