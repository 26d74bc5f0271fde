"""Apply locks in Vault KV v2, taken with check-and-set: one per run, one per account it works on.

The run lock (``locks/manifest-<digest>``, ``-shard-I-of-N`` when sharded) keeps two
applies of one manifest and shard apart and says who is at it; each shard has its own,
so the machines of a CI matrix or an Indexed Job never wait for each other. The account
locks (``locks/accounts/<name>``) keep overlapping runs apart whatever they were started
with (another shard count, ``--target``, a rerun elsewhere): a run takes one, under its
run lock's id, for every account it has work for before it looks again and acts; an
account another run holds is left alone and reported. Locks are taken only when there
is work, so a converged apply writes nothing.

A lock records who holds it (user, host, pid), since when and for how long (TTL). A
lock past its TTL is stale: it is reported with its holder and taken over only by
``apply --force-unlock ID``, never silently; the ID takes over the run lock and the
account locks of the run it names (a run killed mid-way leaves both).
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
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from provisioner.clients.vault import CasConflict, VaultClient
from provisioner.errors import ProvisionerError

DEFAULT_TTL_SECONDS = 3600


class LockHeld(ProvisionerError):
    pass


@dataclass(frozen=True)
class LockInfo:
    id: str
    holder: str
    acquired_at: float
    ttl_seconds: int

    @property
    def stale(self) -> bool:
        return time.time() > self.acquired_at + self.ttl_seconds

    def describe(self) -> str:
        age = int(time.time() - self.acquired_at)
        state = "stale (past its TTL)" if self.stale else "active"
        return f"lock {self.id} held by {self.holder} for {age}s, {state}"

    @classmethod
    def new(cls, ttl_seconds: int) -> LockInfo:
        return cls(
            id=uuid.uuid4().hex[:12],
            holder=f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}",
            acquired_at=time.time(),
            ttl_seconds=ttl_seconds,
        )

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "holder": self.holder,
            "acquired_at": str(self.acquired_at),
            "ttl_seconds": str(self.ttl_seconds),
        }

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> LockInfo | None:
        """None for a released lock (its data emptied)."""
        if not data.get("id"):
            return None
        return cls(
            id=str(data["id"]),
            holder=str(data["holder"]),
            acquired_at=float(data["acquired_at"]),
            ttl_seconds=int(data["ttl_seconds"]),
        )


def lock_path(state_path: str, manifest_path: str, shard: tuple[int, int] | None = None) -> str:
    """The run lock of a manifest (by absolute path) and, for ``--shard I/N``, of that shard."""
    digest = hashlib.sha256(os.path.abspath(manifest_path).encode()).hexdigest()[:16]
    suffix = f"-shard-{shard[0]}-of-{shard[1]}" if shard is not None else ""
    return f"{state_path}/locks/manifest-{digest}{suffix}"


def account_lock_path(state_path: str, account: str) -> str:
    return f"{state_path}/locks/accounts/{account}"


class ApplyLock:
    """The run lock."""

    def __init__(
        self, vault: VaultClient, path: str, ttl_seconds: int = DEFAULT_TTL_SECONDS
    ) -> None:
        self.vault = vault
        self.path = path
        self.ttl = ttl_seconds
        self.info: LockInfo | None = None

    def current(self) -> tuple[LockInfo | None, int]:
        found = self.vault.read_state(self.path)
        if found is None:
            return None, 0
        data, version = found
        return LockInfo.parse(data), version

    def acquire(self, force_unlock: str | None = None) -> LockInfo:
        held, version = self.current()
        if held is not None and force_unlock != held.id:
            hint = f"; if its holder is gone, run again with --force-unlock {held.id}"
            raise LockHeld(f"another apply holds this manifest: {held.describe()}{hint}")
        info = LockInfo.new(self.ttl)
        try:
            self.vault.write_state(self.path, info.record(), cas=version)
        except CasConflict:
            raise LockHeld("another apply took the lock at the same moment; try again") from None
        self.info = info
        return info

    def release(self) -> None:
        if self.info is None:
            return
        held, version = self.current()
        if held is not None and held.id == self.info.id:
            self.vault.write_state(self.path, {}, cas=version)
        self.info = None


class AccountLocks:
    """The account locks of one run, all under the run lock's id; thread-safe."""

    def __init__(self, vault: VaultClient, state_path: str, run: LockInfo) -> None:
        self.vault = vault
        self.state_path = state_path
        self.run = run
        self._held: dict[str, int] = {}  # account -> version of our lock record
        self._guard = threading.Lock()

    @property
    def held(self) -> frozenset[str]:
        with self._guard:
            return frozenset(self._held)

    def acquire(
        self, accounts: Iterable[str], *, force_unlock: str | None = None, parallelism: int = 16
    ) -> dict[str, LockInfo]:
        """Take the lock of every account that is free, ours, or held by the run ``force_unlock``
        names; return the others with their holders (those accounts must be left alone)."""
        names = list(dict.fromkeys(accounts))
        with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(names) or 1))) as pool:
            outcomes = list(pool.map(lambda n: self._take(n, force_unlock), names))
        return {name: other for name, other in zip(names, outcomes, strict=True) if other}

    def release(self, *, parallelism: int = 16) -> None:
        """Release what this run holds; a lock taken over meanwhile (--force-unlock) is left."""
        with self._guard:
            held, self._held = dict(self._held), {}
        if not held:
            return
        with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(held)))) as pool:
            list(pool.map(lambda item: self._give_back(*item), held.items()))

    def _take(self, account: str, force_unlock: str | None) -> LockInfo | None:
        path = account_lock_path(self.state_path, account)
        found = self.vault.read_state(path)
        data, version = found if found is not None else ({}, 0)
        other = LockInfo.parse(data)
        if other is not None and other.id not in (self.run.id, force_unlock):
            return other
        try:
            written = self.vault.write_state(path, self.run.record(), cas=version)
        except CasConflict:  # another run took it between our read and our write
            found = self.vault.read_state(path)
            taker = LockInfo.parse(found[0]) if found is not None else None
            return taker or LockInfo("unknown", "another apply", time.time(), 0)
        with self._guard:
            self._held[account] = written
        return None

    def _give_back(self, account: str, version: int) -> None:
        # a CasConflict: taken over by --force-unlock, no longer ours to release
        with contextlib.suppress(CasConflict):
            self.vault.write_state(account_lock_path(self.state_path, account), {}, cas=version)
