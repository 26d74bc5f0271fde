"""Apply locks as leases in Vault KV v2, written with check-and-set: one per run, one per account.

The run lease (``locks/manifest-<digest>``, ``-shard-I-of-N`` when sharded) keeps two
applies of one manifest and shard apart and says who is at it; each shard has its own,
so the machines of a CI matrix or an Indexed Job never wait for each other. The account
locks (``locks/accounts/<name>``) keep overlapping runs apart whatever they were started
with (another shard count, ``--target``, a rerun elsewhere): a run takes one for every
account it has work for before it looks again and acts; an account another run holds is
left alone and reported. With each account lock goes the lock of the account's address on
its chain (``locks/senders/<chain_id>/<address>``), because the journal of transactions is
kept by sender, not by name: two manifests sharing a state_path may name one address
differently, and while a run holds the address nobody else journals or sends from it. So a
run may read each sender's journal once and keep it up to date with its own writes
(journal.HeldJournal). Locks are taken only when there is work, so a converged apply writes
nothing.

A lease holds for a short duration (``--lock-ttl``, 60 s by default) and its holder
renews it every third of that (``Heartbeat``), however long the apply takes. An account
lock names the run lease it belongs to and lives as long as that lease does (etcd's keys
attached to a session lease), so one renewal keeps all of a run's locks. A lease may be
taken by another run once it has expired, or at once by a run on the same host when its
holder's process no longer exists (host, boot, pid namespace, pid and the process's start
time are recorded, so a reused pid is not mistaken for the holder). ``--force-unlock ID``
takes over a live lease; it is meant for a holder on another host known to be gone.

Fencing: ``Lease.check()`` (apply/lease.py) before every side effect. A holder acts only while its lease
has at least a third of its duration left by its own monotonic clock, renewing first when
less is left; a lease that lapsed is never renewed again, so a run paused past its expiry
(SIGSTOP, a frozen VM) finds on waking that it lost it, raises ``LeaseLost`` and does
nothing more. Takers judge expiry by their own wall clock against the expiry the holder
wrote: the third of the duration is the room for clock skew between hosts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from provisioner.apply.lease import Lease, LeaseLost, LeaseRecord, Takeover, refusal, why_free
from provisioner.clients.vault import CasConflict, VaultClient, VaultError
from provisioner.manifest.model import Manifest


def lock_path(state_path: str, manifest_path: str, shard: tuple[int, int] | None = None) -> str:
    """The run lease of a manifest (by absolute path) and, for ``--shard I/N``, of that shard."""
    digest = hashlib.sha256(os.path.abspath(manifest_path).encode()).hexdigest()[:16]
    suffix = f"-shard-{shard[0]}-of-{shard[1]}" if shard is not None else ""
    return f"{state_path}/locks/manifest-{digest}{suffix}"


def account_lock_path(state_path: str, account: str) -> str:
    return f"{state_path}/locks/accounts/{account}"


def sender_lock_path(state_path: str, chain_id: int, address: str) -> str:
    return f"{state_path}/locks/senders/{chain_id}/{address.lower()}"


def sender_locks(manifest: Manifest) -> dict[str, str]:
    """Account name -> the lock path of its address on the manifest's chain."""
    state, chain_id = manifest.vault.state_path, manifest.network.chain_id
    return {a.name: sender_lock_path(state, chain_id, a.address) for a in manifest.accounts}


@dataclass(frozen=True)
class Busy:
    """An account another live run holds: that run's lease, and what to tell the user."""

    holder: LeaseRecord
    message: str


class AccountLocks:
    """The account locks of one run, each naming its run lease; thread-safe. ``senders``:
    account name -> the lock path of its address (``sender_lock_path``), taken with the
    account's own lock: an account is held only when both are."""

    def __init__(
        self,
        vault: VaultClient,
        state_path: str,
        run: Lease,
        senders: Mapping[str, str] | None = None,
    ) -> None:
        self.vault = vault
        self.state_path = state_path
        self.run = run
        self.senders = dict(senders or {})
        self.takeovers: list[Takeover] = []
        self._held: dict[str, dict[str, int]] = {}  # account -> {lock path: our record's version}
        self._taken_over: set[str] = set()  # accounts with a lock this run took from another
        self._guard = threading.Lock()

    @property
    def held(self) -> frozenset[str]:
        with self._guard:
            return frozenset(self._held)

    @property
    def taken_over(self) -> frozenset[str]:
        """Held accounts one of whose locks this run took from another run (expired, gone, or
        ``--force-unlock``): that run may still finish a write it began (or, unlocked by
        force, still be at work), so nobody can promise that only this run journals for
        the account's address (journal.HeldJournal is not for them)."""
        with self._guard:
            return frozenset(self._taken_over)

    def check(self, account: str) -> None:
        """The fence for one account: its locks are ours and our run lease holds (``Lease.check``)."""
        self.run.check()
        with self._guard:
            if account not in self._held:
                raise LeaseLost(f"this run does not hold the lock of account {account}")

    def acquire(
        self, accounts: Iterable[str], *, force_unlock: str | None = None, parallelism: int = 16
    ) -> dict[str, Busy]:
        """Take the locks of every account that is free, ours, or held by a run that is gone
        (its lease expired, or its process on this host no longer exists) or that
        ``force_unlock`` names; return the others (those accounts must be left alone). An
        account's two locks are asked side by side; neither is kept unless both are taken."""
        names = list(dict.fromkeys(accounts))
        wanted = [(name, path, why) for name in names for path, why in self._paths(name)]
        with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(wanted) or 1))) as pool:
            taken = list(pool.map(lambda w: self._take_path(w[1], w[2], force_unlock), wanted))
        outcomes: dict[str, list[tuple[str, Busy | tuple[int, Takeover | None]]]] = {}
        for (name, path, _), outcome in zip(wanted, taken, strict=True):
            outcomes.setdefault(name, []).append((path, outcome))
        busy: dict[str, Busy] = {}
        for name, results in outcomes.items():
            refused = [o for _, o in results if isinstance(o, Busy)]
            got = {path: o for path, o in results if not isinstance(o, Busy)}
            if refused:
                busy[name] = refused[0]
                for path, (version, _takeover) in got.items():
                    self._give_back(path, version)
                continue
            took = [t for _, t in got.values() if t is not None]
            with self._guard:
                self._held[name] = {path: version for path, (version, _) in got.items()}
                self.takeovers += took
                if took:
                    self._taken_over.add(name)
        return busy

    def _paths(self, account: str) -> list[tuple[str, str]]:
        """The account's lock paths, each with what its holder is doing, for a refusal."""
        paths = [(account_lock_path(self.state_path, account), "another apply works on it")]
        if account in self.senders:
            address = self.senders[account].rpartition("/")[2]
            paths.append(
                (
                    self.senders[account],
                    f"another apply works on its address {address} (maybe under another "
                    "account name: manifests sharing a state_path journal by address)",
                )
            )
        return paths

    def release(self, *, parallelism: int = 16) -> None:
        """Release what this run holds (before its run lease); a lock another run took
        meanwhile is left to it, and a run that lost its lease writes nothing."""
        with self._guard:
            held, self._held = dict(self._held), {}
            self._taken_over.clear()
        taken = [item for versions in held.values() for item in versions.items()]
        if not taken or self.run.lost() is not None:
            return
        with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(taken)))) as pool:
            list(pool.map(lambda item: self._give_back(*item), taken))

    def _take_path(
        self, path: str, busy_why: str, force_unlock: str | None
    ) -> Busy | tuple[int, Takeover | None]:
        found = self.vault.read_state(path)
        data, version = found if found is not None else ({}, 0)
        other = LeaseRecord.parse(data)
        now = self.run.clock.wall()
        takeover = None
        if other is not None and other.id != self.run.id:
            why, live = self._why_free(other, now, force_unlock)
            if why is None:
                return Busy(live, refusal(live, now, self.run.me, f"left alone, {busy_why}"))
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
        if takeover is not None and force_unlock == takeover.previous.id:
            ended = self._end_run(takeover.previous)
            takeover = Takeover(path, takeover.previous, f"{takeover.reason}; {ended}")
        return written, takeover

    def _end_run(self, other: LeaseRecord) -> str:
        """A lock taken from a run by ``--force-unlock``: that run's lease is ended too, so
        that a holder that was not gone after all fails its next renewal (its heartbeat's next
        beat, within a third of the lease's duration; at the latest its fence, once less than
        a third is left) and writes nothing more, for any account, instead of working on
        beside this run (its account locks are never read again while it holds them).

        Ended, not released: the record stays as it was, marked ``ended_by``, so its holder's
        check-and-set renewal fails, while for everyone else it holds until it expires: until
        then its holder may still be writing, and its other locks (and its manifest) are
        not free to a run that did not name it. What happened, for this run's report."""
        if not other.run:
            return "it names no run lease to end"
        for _ in range(3):  # its heartbeat may renew it between the read and the write
            try:
                found = self.vault.read_state(other.run)
                owner = LeaseRecord.parse(found[0]) if found is not None else None
                if found is None or owner is None or owner.id != other.id:
                    return f"its run lease {other.run} was already released or taken over"
                if owner.ended_by:
                    return f"its run lease {other.run} was ended by run {owner.ended_by}"
                self.vault.write_state(
                    other.run, {**found[0], "ended_by": self.run.id}, cas=found[1]
                )
            except CasConflict:
                continue
            except VaultError:
                break
            return (
                f"its run lease {other.run} was ended too: if that run is alive, it stops at "
                "its next renewal"
            )
        return (
            f"its run lease {other.run} could not be ended: if that run is alive, it goes on "
            "with its other accounts until its lease expires"
        )

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
        why = why_free(run, now, self.run.me, None)
        return (None if why is None else f"its run's lease {run.id}: {why}"), run

    def _give_back(self, path: str, version: int) -> None:
        with contextlib.suppress(CasConflict):
            self.vault.write_state(path, {}, cas=version)
