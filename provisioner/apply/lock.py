"""One apply at a time per manifest: a lock in Vault KV v2, taken with check-and-set.

The lock records who holds it (host, pid, user), since when and for how long
(TTL). A lock past its TTL is stale: it is reported with its holder and taken
over only by ``apply --force-unlock ID``, never silently.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import time
import uuid
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


def lock_path(state_path: str, manifest_path: str) -> str:
    digest = hashlib.sha256(os.path.abspath(manifest_path).encode()).hexdigest()[:16]
    return f"{state_path}/locks/manifest-{digest}"


class ApplyLock:
    def __init__(
        self, vault: VaultClient, path: str, ttl_seconds: int = DEFAULT_TTL_SECONDS
    ) -> None:
        self.vault = vault
        self.path = path
        self.ttl = ttl_seconds
        self.info: LockInfo | None = None
        self._version = 0

    def current(self) -> tuple[LockInfo | None, int]:
        found = self.vault.read_state(self.path)
        if found is None:
            return None, 0
        data, version = found
        if not data.get("id"):
            return None, version
        return LockInfo(
            id=str(data["id"]),
            holder=str(data["holder"]),
            acquired_at=float(data["acquired_at"]),
            ttl_seconds=int(data["ttl_seconds"]),
        ), version

    def acquire(self, force_unlock: str | None = None) -> LockInfo:
        held, version = self.current()
        if held is not None and force_unlock != held.id:
            hint = f"; if its holder is gone, run again with --force-unlock {held.id}"
            raise LockHeld(f"another apply holds this manifest: {held.describe()}{hint}")
        info = LockInfo(
            id=uuid.uuid4().hex[:12],
            holder=f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}",
            acquired_at=time.time(),
            ttl_seconds=self.ttl,
        )
        data: dict[str, Any] = {
            "id": info.id,
            "holder": info.holder,
            "acquired_at": str(info.acquired_at),
            "ttl_seconds": str(info.ttl_seconds),
        }
        try:
            self._version = self.vault.write_state(self.path, data, cas=version)
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
