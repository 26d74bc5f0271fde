"""Locks per shard and per account: shards never wait for each other, overlapping runs never share an account."""

from __future__ import annotations

import uuid

import pytest

from provisioner.apply.lock import (
    AccountLocks,
    ApplyLock,
    LockHeld,
    account_lock_path,
    lock_path,
)
from provisioner.clients.vault import VaultClient
from provisioner.manifest.model import SecretRef, VaultAuth, VaultSpec
from provisioner.redact import Redactor
from provisioner.sandbox.control import SandboxInfo
from provisioner.secrets import SecretResolver

pytestmark = pytest.mark.sandbox


@pytest.fixture
def vault(sandbox: SandboxInfo) -> VaultClient:
    redactor = Redactor()
    resolver = SecretResolver(redactor, {"T": sandbox.vault_token})
    spec = VaultSpec(
        address=sandbox.vault_addr, auth=VaultAuth(method="token", token=SecretRef("env", "T"))
    )
    return VaultClient.connect(spec, resolver, redactor)


@pytest.fixture
def state() -> str:
    return f"lock-scale-{uuid.uuid4().hex[:8]}"


def test_each_shard_has_its_own_run_lock(vault: VaultClient, state: str) -> None:
    paths = {lock_path(state, "provision.yaml", shard) for shard in (None, (0, 2), (1, 2), (0, 4))}
    assert len(paths) == 4
    assert lock_path(state, "provision.yaml") == lock_path(state, "./provision.yaml")
    shard0 = ApplyLock(vault, lock_path(state, "provision.yaml", (0, 2)))
    shard1 = ApplyLock(vault, lock_path(state, "provision.yaml", (1, 2)))
    shard0.acquire()
    shard1.acquire()  # not blocked by the other shard
    with pytest.raises(LockHeld):
        ApplyLock(vault, lock_path(state, "provision.yaml", (0, 2))).acquire()
    shard0.release()
    shard1.release()


def test_an_account_held_by_one_run_is_left_alone_by_another(
    vault: VaultClient, state: str
) -> None:
    first_run = ApplyLock(vault, lock_path(state, "a.yaml")).acquire()
    second_run = ApplyLock(vault, lock_path(state, "b.yaml")).acquire()
    first = AccountLocks(vault, state, first_run)
    second = AccountLocks(vault, state, second_run)
    assert first.acquire(["mm-1", "mm-2"]) == {}
    busy = second.acquire(["mm-2", "mm-3"])
    assert set(busy) == {"mm-2"} and busy["mm-2"].id == first_run.id
    assert "pid" in busy["mm-2"].holder
    assert first.held == {"mm-1", "mm-2"} and second.held == {"mm-3"}
    assert first.acquire(["mm-1"]) == {}  # a run may ask again for what it holds
    first.release()
    assert second.acquire(["mm-2"]) == {}  # free once released
    second.release()
    data = vault.read_state(account_lock_path(state, "mm-2"))
    assert data is not None and data[0] == {}


def test_force_unlock_takes_over_the_account_locks_of_the_run_it_names(
    vault: VaultClient, state: str
) -> None:
    killed = ApplyLock(vault, lock_path(state, "a.yaml")).acquire()
    AccountLocks(vault, state, killed).acquire(["mm-1", "mm-2"])  # never released: a crash
    rerun = ApplyLock(vault, lock_path(state, "a.yaml")).acquire(force_unlock=killed.id)
    locks = AccountLocks(vault, state, rerun)
    assert set(locks.acquire(["mm-1", "mm-2"])) == {"mm-1", "mm-2"}  # not without the ID
    assert locks.acquire(["mm-1", "mm-2"], force_unlock=killed.id) == {}
    assert locks.held == {"mm-1", "mm-2"}
    other = AccountLocks(vault, state, ApplyLock(vault, lock_path(state, "c.yaml")).acquire())
    assert set(other.acquire(["mm-1"], force_unlock="not-the-holder")) == {"mm-1"}
    locks.release()
