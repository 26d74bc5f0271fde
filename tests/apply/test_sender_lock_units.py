"""The address lock (apply/lock.py) and the journal a run keeps under it (journal.HeldJournal),
on in-memory clients: who else may journal for the address meanwhile, and what the run's view
of the journal is after a write that failed."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.apply_fakes import STATE, FakeVault, World, world

from provisioner.apply.capabilities import MissingCapabilities
from provisioner.apply.events import AccountBusy, Event, Finished, LeaseTakenOver
from provisioner.apply.holder import Process
from provisioner.apply.lease import Lease, LeaseRecord
from provisioner.apply.lock import (
    AccountLocks,
    account_lock_path,
    lock_path,
    sender_lock_path,
    sender_locks,
)
from provisioner.apply.run import ApplyRequest, run_apply
from provisioner.cli.commands.journal import _account_lock
from provisioner.clients.vault import CasConflict, VaultError
from provisioner.errors import ProvisionerError
from provisioner.journal import HeldJournal, Journal, StoredTx
from provisioner.networks import SEPOLIA
from provisioner.session import Session

USDC = 10**6
ELSEWHERE = Process("ci", "runner-elsewhere", "boot-x", "pidns-x", 4242, "start-x")


def session(w: World) -> Session:
    return Session(w.conn.manifest, (w.spec,), w.conn, parallelism=2)  # type: ignore[arg-type]


def never(_plan: object) -> bool:
    raise AssertionError("nobody is asked with --auto-approve")


def _record(lease_id: str, *, expired: bool, run: str = "") -> dict[str, str]:
    now = time.time()
    until = now - 200 if expired else now + 600
    return LeaseRecord(lease_id, ELSEWHERE, now - 300, until, 60, run).record()


def _awaiting(w: World, nonce: int) -> StoredTx:
    """What a run leaves when it asked a remote signer and has no answer yet."""
    return StoredTx(
        "desk-a", "deposit", nonce, "", "", 4_500_000, w.spec.address, chain_id=SEPOLIA.chain_id
    )


def _sender_folder(w: World) -> str:
    return f"{STATE}/journal/_senders/{SEPOLIA.chain_id}/{w.spec.address.lower()}"


def test_a_run_that_took_an_accounts_lock_over_reads_its_journal_before_each_transaction() -> None:
    """The run it took the lock from may still finish a journal write it began (an answer
    slower than the lease) or, unlocked with --force-unlock, still be at work: its request to
    a remote signer, journaled after this run first read the journal, must stop this run's
    deposit, as it did before the journal was kept in memory."""
    w = world(deposit="4.5")
    w.vault.state[account_lock_path(STATE, w.spec.name)] = (_record("gone0001", expired=True), 1)
    build_approve = w.chain.build_approve

    def approve_then_the_other_run_journals(owner: str, amount: int, **kw: Any) -> dict[str, Any]:
        tx = build_approve(owner, amount, **kw)
        Journal(w.vault, STATE).record(_awaiting(w, 7))  # the other run, meanwhile
        return tx

    w.chain.build_approve = approve_then_the_other_run_journals  # type: ignore[method-assign]
    seen: list[Event] = []
    rc = run_apply(session(w), ApplyRequest(auto_approve=True), report=seen.append, approve=never)
    assert rc == 1
    assert any(isinstance(e, LeaseTakenOver) for e in seen)
    assert len(w.chain.raw_sent) == 1  # the approve; no deposit beside the signer's request
    assert w.chain.credited == {}
    (finished,) = [e for e in seen if isinstance(e, Finished)]
    (result,) = finished.results
    assert result.failed == f"{w.spec.name}/deposit"
    assert result.error is not None and "awaiting the signer" in result.error, result.error


def test_an_address_another_manifest_holds_is_left_alone_and_the_message_names_it() -> None:
    w = world(deposit="4.5")
    sender = sender_lock_path(STATE, SEPOLIA.chain_id, w.spec.address)
    other = Lease(w.vault, lock_path(STATE, "other.yaml"), 60)  # type: ignore[arg-type]
    other.acquire()
    theirs = AccountLocks(w.vault, STATE, other, {"desk-a": sender})  # type: ignore[arg-type]
    assert theirs.acquire(["desk-a"]) == {}
    seen: list[Event] = []
    rc = run_apply(session(w), ApplyRequest(auto_approve=True), report=seen.append, approve=never)
    assert rc == 1
    (busy,) = [e for e in seen if isinstance(e, AccountBusy)]
    assert busy.account == w.spec.name and busy.holder.id == other.id
    assert w.spec.address.lower() in busy.message, busy.message
    assert "another account name" in busy.message, busy.message
    assert w.chain.raw_sent == []
    name_lock = w.vault.read_state(account_lock_path(STATE, w.spec.name))
    assert name_lock is not None and name_lock[0] == {}  # given back: no half-held account
    held = w.vault.read_state(sender)
    assert held is not None and held[0]["id"] == other.id  # theirs, untouched
    theirs.release()
    other.release()


def test_journal_resolve_is_refused_while_another_name_holds_the_address() -> None:
    """resolve removes entries under the address: while an apply of another manifest holds it
    (that run may be settling the very entry), it removes nothing."""
    w = world(deposit="4.5")
    Journal(w.vault, STATE).record(_awaiting(w, 7))
    sender = sender_lock_path(STATE, SEPOLIA.chain_id, w.spec.address)
    other = Lease(w.vault, lock_path(STATE, "other.yaml"), 60)  # type: ignore[arg-type]
    other.acquire()
    theirs = AccountLocks(w.vault, STATE, other, {"desk-a": sender})  # type: ignore[arg-type]
    assert theirs.acquire(["desk-a"]) == {}
    with pytest.raises(ProvisionerError) as refused, _account_lock(session(w), w.spec.name):
        raise AssertionError("resolve went ahead while another run holds the address")
    assert "nothing was resolved" in str(refused.value)
    assert w.spec.address.lower() in str(refused.value)
    assert w.vault.state_keys(_sender_folder(w) + "/") == ["deposit-7"]
    theirs.release()
    with _account_lock(session(w), w.spec.name):  # free once that run is gone
        pass


def test_a_run_killed_between_its_two_lock_writes_is_recovered_by_a_plain_retry() -> None:
    """Killed after the account's lock was written and before its address's: the retry of the
    same manifest takes the run lease over once it expires, then the account's lock (its run
    no longer holds a lease) and the address's (never written), no --force-unlock."""
    w = world(deposit="4.5")
    run_lock = lock_path(STATE, w.conn.manifest.path)
    w.vault.state[run_lock] = (_record("killed01", expired=True), 1)
    w.vault.state[account_lock_path(STATE, w.spec.name)] = (
        _record("killed01", expired=False, run=run_lock),
        1,
    )
    seen: list[Event] = []
    rc = run_apply(session(w), ApplyRequest(auto_approve=True), report=seen.append, approve=never)
    assert rc == 0
    assert w.chain.credited == {(w.dydx.stark.public_key, 7): 4_500_000}
    took = [e for e in seen if isinstance(e, LeaseTakenOver)]
    assert len(took) == 2  # the run lease, the account's lock; the address lock was free
    assert all(not data for path, (data, _) in w.vault.state.items() if "/locks/" in path)


def test_the_locks_a_run_took_over_are_named_and_forgotten_on_release() -> None:
    vault = FakeVault([])
    lease = Lease(vault, lock_path(STATE, "m.yaml"), 60)  # type: ignore[arg-type]
    lease.acquire()
    senders = {
        "free": sender_lock_path(STATE, 1, "0x" + "11" * 20),
        "left": sender_lock_path(STATE, 1, "0x" + "22" * 20),
    }
    vault.state[senders["left"]] = (_record("gone0002", expired=True), 1)
    locks = AccountLocks(vault, STATE, lease, senders)  # type: ignore[arg-type]
    assert locks.acquire(["free", "left"]) == {}
    assert locks.taken_over == {"left"}
    locks.release()
    assert locks.taken_over == frozenset() and locks.held == frozenset()


def test_sender_locks_name_each_address_in_lower_case_on_the_manifests_chain() -> None:
    w = world()
    assert sender_locks(w.conn.manifest) == {
        w.spec.name: f"{STATE}/locks/senders/{SEPOLIA.chain_id}/{w.spec.address.lower()}"
    }


def test_a_token_that_cannot_write_the_address_lock_is_refused_before_any_write() -> None:
    """The Vault token's capabilities are checked on every path the run writes, the address
    lock included, before the first write (the run's own lock is one)."""
    w = world(deposit="4.5")
    asked: list[str] = []

    def missing(paths_and_caps: dict[str, set[str]]) -> dict[str, set[str]]:
        asked.extend(paths_and_caps)
        return {p: c for p, c in paths_and_caps.items() if "/locks/senders/" in p}

    w.vault.missing_capabilities = missing  # type: ignore[method-assign,assignment]
    with pytest.raises(MissingCapabilities) as refused:
        run_apply(
            session(w), ApplyRequest(auto_approve=True), report=lambda _e: None, approve=never
        )
    sender = sender_lock_path(STATE, SEPOLIA.chain_id, w.spec.address)
    assert f"secret/data/{sender}" in asked
    assert sender in str(refused.value)
    assert w.vault.state == {} and w.chain.raw_sent == []


# -- the view after a write that failed ----------------------------------------------------


class _Lands(FakeVault):
    """A Vault whose next writes or deletes land, then time out (maybe_sent)."""

    def __init__(self) -> None:
        super().__init__([])
        self.then_fail = 0

    def write_state(self, path: str, data: Any, cas: int) -> int:
        version = super().write_state(path, data, cas)
        if "/journal/" in path and self.then_fail:
            self.then_fail -= 1
            raise VaultError("Vault at http://vault: writing: no answer within 30s")
        return version

    def delete_state(self, path: str) -> None:
        super().delete_state(path)
        if "/journal/" in path and self.then_fail:
            self.then_fail -= 1
            raise VaultError("Vault at http://vault: deleting: no answer within 30s")


ADDRESS = "0x00000000000000000000000000000000000000Aa"


def _tx(nonce: int, **kw: Any) -> StoredTx:
    return StoredTx("mm", "deposit", nonce, "", "", 1, ADDRESS, chain_id=11155111, **kw)


def _fresh(vault: FakeVault) -> list[StoredTx]:
    return Journal(vault, STATE).transactions(11155111, ADDRESS, "mm")


def _view(journal: HeldJournal) -> list[StoredTx]:
    return journal.transactions(11155111, ADDRESS, "mm")


def test_a_record_that_timed_out_after_landing_is_in_the_view() -> None:
    """A remote signer's request journaled, the answer lost: Vault holds an entry awaiting the
    signer, which must block the sender for the rest of the run too."""
    vault = _Lands()
    journal = HeldJournal(vault, STATE, empty=[(11155111, ADDRESS, "mm")])
    vault.then_fail = 1
    with pytest.raises(VaultError):
        journal.record(_tx(3))
    assert [t.key for t in _view(journal)] == ["deposit-3"] == [t.key for t in _fresh(vault)]
    assert _view(journal)[0].awaiting_signer


def test_a_record_refused_by_check_and_set_shows_the_entry_it_ran_into() -> None:
    vault = _Lands()
    journal = HeldJournal(vault, STATE)
    assert _view(journal) == []  # read once
    Journal(vault, STATE).record(_tx(3))  # someone journals meanwhile
    with pytest.raises(CasConflict):
        journal.record(_tx(3))
    assert [t.key for t in _view(journal)] == ["deposit-3"]


def test_a_note_or_a_delete_that_timed_out_after_landing_is_read_again() -> None:
    vault = _Lands()
    Journal(vault, STATE).record(_tx(3))
    journal = HeldJournal(vault, STATE)
    (entry,) = _view(journal)
    vault.then_fail = 1
    with pytest.raises(VaultError):
        journal.note_problem(entry, "the signer sent another amount")
    (noted,) = _view(journal)
    assert noted.problem == "the signer sent another amount" == _fresh(vault)[0].problem
    vault.then_fail = 1
    with pytest.raises(VaultError):
        journal.forget_tx(noted)
    assert _view(journal) == [] == _fresh(vault)


def test_an_older_entry_under_the_accounts_name_is_kept_in_the_view_as_a_read_gives_it() -> None:
    """chain_id 0: journaled under the account's name before the journal was kept by sender;
    the run's note and delete of it keep the view equal to Vault."""
    vault = FakeVault([])
    Journal(vault, STATE).record(StoredTx("mm", "deposit", 2, "0xab", "0x02", 1))
    Journal(vault, STATE).record(_tx(1))
    journal = HeldJournal(vault, STATE)
    assert _view(journal) == _fresh(vault)
    older = next(t for t in _view(journal) if not t.chain_id)
    assert older.sender == ADDRESS  # as a read gives it: the address asked about
    journal.note_problem(older, "held for a person")
    assert _view(journal) == _fresh(vault)
    assert next(t for t in _view(journal) if not t.chain_id).problem == "held for a person"
    journal.forget_tx(older)
    assert _view(journal) == _fresh(vault) and [t.key for t in _view(journal)] == ["deposit-1"]
