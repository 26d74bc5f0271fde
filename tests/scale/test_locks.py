"""Leases per shard and per account: shards never wait for each other, overlapping runs never share an account."""

from __future__ import annotations

import uuid

import pytest

from provisioner.apply.lease import Lease, LeaseLost, LockHeld
from provisioner.apply.lock import AccountLocks, account_lock_path, lock_path, sender_lock_path
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


def _lease(
    vault: VaultClient, state: str, name: str, shard: tuple[int, int] | None = None
) -> Lease:
    lease = Lease(vault, lock_path(state, name, shard), 60)
    lease.acquire()
    return lease


def test_each_shard_has_its_own_run_lease(vault: VaultClient, state: str) -> None:
    paths = {lock_path(state, "provision.yaml", shard) for shard in (None, (0, 2), (1, 2), (0, 4))}
    assert len(paths) == 4
    assert lock_path(state, "provision.yaml") == lock_path(state, "./provision.yaml")
    shard0 = _lease(vault, state, "provision.yaml", (0, 2))
    shard1 = _lease(vault, state, "provision.yaml", (1, 2))  # not blocked by the other shard
    with pytest.raises(LockHeld):
        _lease(vault, state, "provision.yaml", (0, 2))
    shard0.release()
    shard1.release()


def test_an_account_held_by_one_run_is_left_alone_by_another(
    vault: VaultClient, state: str
) -> None:
    first = AccountLocks(vault, state, _lease(vault, state, "a.yaml"))
    second = AccountLocks(vault, state, _lease(vault, state, "b.yaml"))
    assert first.acquire(["mm-1", "mm-2"]) == {}
    busy = second.acquire(["mm-2", "mm-3"])
    assert set(busy) == {"mm-2"} and busy["mm-2"].holder.id == first.run.id
    assert "pid" in busy["mm-2"].message and "left alone" in busy["mm-2"].message
    assert first.held == {"mm-1", "mm-2"} and second.held == {"mm-3"}
    assert first.acquire(["mm-1"]) == {}  # a run may ask again for what it holds
    first.release()
    assert second.acquire(["mm-2"]) == {}  # free once released
    assert second.takeovers == []  # released, not taken over
    second.release()
    data = vault.read_state(account_lock_path(state, "mm-2"))
    assert data is not None and data[0] == {}


def test_one_address_under_two_names_is_held_by_one_run_at_a_time(
    vault: VaultClient, state: str
) -> None:
    """The journal of transactions is kept by sender: two manifests sharing a state_path may
    name one address differently, and only one run at a time may journal and send for it."""
    address = "0x00000000000000000000000000000000000000Aa"
    sender = sender_lock_path(state, 11155111, address)
    first = AccountLocks(vault, state, _lease(vault, state, "a.yaml"), {"mm-1": sender})
    second = AccountLocks(vault, state, _lease(vault, state, "b.yaml"), {"desk-a": sender})
    assert first.acquire(["mm-1"]) == {}
    busy = second.acquire(["desk-a"])
    assert set(busy) == {"desk-a"} and busy["desk-a"].holder.id == first.run.id
    assert "another apply works on its address" in busy["desk-a"].message
    assert second.held == frozenset()
    name_lock = vault.read_state(account_lock_path(state, "desk-a"))
    assert name_lock is not None and name_lock[0] == {}  # given back: no half-held account
    with pytest.raises(LeaseLost):
        second.check("desk-a")  # its writes are fenced off
    first.release()
    assert second.acquire(["desk-a"]) == {}  # free once released
    assert second.held == {"desk-a"}
    second.release()
    freed = vault.read_state(sender)
    assert freed is not None and freed[0] == {}


def test_force_unlock_takes_over_the_account_locks_of_the_run_it_names(
    vault: VaultClient, state: str
) -> None:
    alive = _lease(vault, state, "a.yaml")  # a live holder, believed gone by a person
    AccountLocks(vault, state, alive).acquire(["mm-1", "mm-2"])
    rescue = Lease(vault, lock_path(state, "a.yaml"), 60)
    rescue.acquire(force_unlock=alive.id)
    locks = AccountLocks(vault, state, rescue)
    assert set(locks.acquire(["mm-1", "mm-2"])) == set()  # its run lease is no longer its own
    locks.release()
    other = AccountLocks(vault, state, _lease(vault, state, "c.yaml"))
    held = AccountLocks(vault, state, _lease(vault, state, "d.yaml"))
    assert held.acquire(["mm-3"]) == {}
    assert set(other.acquire(["mm-3"], force_unlock="not-the-holder")) == {"mm-3"}
    assert other.acquire(["mm-3"], force_unlock=held.run.id) == {}
    other.release()


def test_force_unlock_of_a_live_runs_account_ends_that_run(vault: VaultClient, state: str) -> None:
    """The person was wrong: the run named by --force-unlock is alive. It must not go on
    working beside the run that took its account: its lease is ended, its next renewal fails
    and its fence refuses every write from then on."""
    alive = _lease(vault, state, "a.yaml")
    held = AccountLocks(vault, state, alive)
    assert held.acquire(["mm-1"]) == {}
    rescue = AccountLocks(vault, state, _lease(vault, state, "b.yaml"))
    assert rescue.acquire(["mm-1"], force_unlock=alive.id) == {}
    with pytest.raises(LeaseLost):
        alive.renew()
    with pytest.raises(LeaseLost):
        held.check("mm-1")
    record = vault.read_state(account_lock_path(state, "mm-1"))
    assert record is not None and record[0]["id"] == rescue.run.id
    held.release()  # a run that lost its lease writes nothing
    record = vault.read_state(account_lock_path(state, "mm-1"))
    assert record is not None and record[0]["id"] == rescue.run.id
    rescue.release()


def test_ending_a_force_unlocked_run_frees_nothing_else_of_it_before_its_lease_expires(
    vault: VaultClient, state: str
) -> None:
    """--force-unlock named one run for one account. Until that run's lease expires it may be
    alive and still writing (it notices only at its next renewal), so its other accounts and
    its run lease stay its own for everyone who did not name it: a plain run of another
    manifest, or a plain retry of its own, waits as it did before."""
    alive = _lease(vault, state, "a.yaml")
    held = AccountLocks(vault, state, alive)
    assert held.acquire(["mm-1", "mm-2"]) == {}
    rescue = AccountLocks(vault, state, _lease(vault, state, "b.yaml"))
    assert rescue.acquire(["mm-1"], force_unlock=alive.id) == {}
    bystander = AccountLocks(vault, state, _lease(vault, state, "c.yaml"))
    busy = bystander.acquire(["mm-2"])
    assert set(busy) == {"mm-2"} and busy["mm-2"].holder.id == alive.id
    assert bystander.takeovers == []
    with pytest.raises(LockHeld):
        _lease(vault, state, "a.yaml")  # a plain retry of the unlocked run's manifest
    with pytest.raises(LeaseLost, match="--force-unlock"):
        alive.renew()  # but the unlocked run itself stops, and is told why
    for locks in (bystander, rescue):
        locks.release()
        locks.run.release()


def test_the_run_that_force_unlocks_says_it_ended_the_holders_run_lease(
    vault: VaultClient, state: str
) -> None:
    alive = _lease(vault, state, "a.yaml")
    assert AccountLocks(vault, state, alive).acquire(["mm-1"]) == {}
    rescue = AccountLocks(vault, state, _lease(vault, state, "b.yaml"))
    assert rescue.acquire(["mm-1"], force_unlock=alive.id) == {}
    (took,) = rescue.takeovers
    assert "run lease" in took.describe() and "ended" in took.describe()
    rescue.release()
