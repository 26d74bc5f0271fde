"""An account's transactions back to back (issue #21), on the unit fakes: journaled before each
broadcast, all sent before any is awaited, forgotten only once final; a deposit that reverts
when mined after this run's approve is followed by approve(0)."""

from __future__ import annotations

from typing import Any

from support.apply_fakes import STATE, World, top_up_plan, world

from provisioner.apply.executor import execute
from provisioner.clients.chain import Receipt
from provisioner.journal import Journal, StoredTx
from provisioner.networks import SEPOLIA
from provisioner.plan.model import Plan
from provisioner.signers.local import LocalKeySigner

USDC = 10**6


def _top_up(w: World, amount: int) -> Plan:
    return top_up_plan(w, amount, amount)


def test_both_are_journaled_and_sent_before_either_is_awaited_and_forgotten_once_final() -> None:
    w = world(deposit="4.5")
    w.chain.mine = False  # held in the pool until someone looks for a receipt
    (result,) = execute(w.conn, _top_up(w, 4_500_000))
    assert result.failed is None, result.error
    sends = [i for i, e in enumerate(w.events) if e.startswith("chain send")]
    journaled = [i for i, e in enumerate(w.events) if "journal" in e and "write" in e]
    forgotten = [i for i, e in enumerate(w.events) if "journal" in e and "delete" in e]
    assert len(sends) == 2 and len(journaled) >= 2 and len(forgotten) == 2, w.events
    assert journaled[0] < sends[0] < journaled[1] < sends[1]  # each journaled before its send
    assert sends[1] < min(forgotten)  # the second went out before the first was awaited
    assert w.chain.credited[(w.dydx.stark.public_key, 7)] == 4_500_000
    assert w.vault.journal(w.spec.name) == []


def test_a_deposit_that_reverts_when_mined_is_followed_by_a_revoke() -> None:
    w = world(deposit="4.5")
    mine = w.chain._mine

    def reverting(tx_hash: str) -> None:
        raw = w.chain.pool[tx_hash]
        mine(tx_hash)
        if len(w.chain.raw_sent) == 2 and raw == w.chain.raw_sent[1]:  # the deposit
            w.chain.credited.clear()
            w.chain.mined[tx_hash] = Receipt(tx_hash, status=0, block_number=len(w.chain.mined))

    w.chain._mine = reverting  # type: ignore[method-assign]
    (result,) = execute(w.conn, _top_up(w, 4_500_000))
    assert result.failed == "confirmations"
    assert result.error is not None and "reverted" in result.error
    assert "the allowance this run approved was revoked" in result.error
    assert len(w.chain.raw_sent) == 3  # approve, deposit, approve(0)
    assert w.chain.allowance[w.spec.address] == 0
    assert w.chain.credited == {}
    assert w.vault.journal(w.spec.name) == []  # the revert and the revoke are final


def test_each_transaction_is_guarded_once_before_it_is_built(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The journal and the node's nonces are read once per transaction sent: an approve's
    guard is the one its remaining deposit was read with (as a deposit's is), not a second
    one a moment later (three journal reads and a nonce read per account, on the WAN)."""
    from provisioner.apply import steps

    guarded: list[int] = []
    real = steps.guard_sender

    def counted(ctx):  # type: ignore[no-untyped-def]
        guarded.append(len(w.chain.raw_sent))
        return real(ctx)

    monkeypatch.setattr(steps, "guard_sender", counted)
    w = world(deposit="4.5")
    (result,) = execute(w.conn, _top_up(w, 4_500_000))
    assert result.failed is None, result.error
    assert len(w.chain.raw_sent) == 2
    assert guarded == [0, 1]  # once before the approve, once before the deposit


def test_a_transaction_another_tool_sends_during_the_approves_refresh_stops_it() -> None:
    """Review of #21: with one guard per approve, read before its deposit refresh, a pending
    nonce that appeared during the refresh went unseen and the approve went out (then the
    deposit refused it: an allowance left standing). The node is asked again before building."""
    w = world(deposit="4.5")
    real_totals, real_counts = w.chain.deposit_totals, w.chain.transaction_counts
    foreign = {"sent": False}

    def totals(*args, **kwargs):  # type: ignore[no-untyped-def]
        foreign["sent"] = True  # another tool's transaction from this address, meanwhile
        return real_totals(*args, **kwargs)

    def counts(address: str) -> tuple[int, int]:
        latest, pending = real_counts(address)
        return (latest, pending + 1) if foreign["sent"] else (latest, pending)

    w.chain.deposit_totals = totals  # type: ignore[method-assign]
    w.chain.transaction_counts = counts  # type: ignore[method-assign]
    (result,) = execute(w.conn, _top_up(w, 4_500_000))
    assert w.chain.raw_sent == []
    assert result.failed is not None and "no journal entry explains it" in (result.error or "")
    assert w.chain.allowance.get(w.spec.address, 0) == 0


def test_a_deposit_whose_guard_fails_after_this_runs_approve_tries_to_revoke_it() -> None:
    """A pending nonce no journal explains appears after the approve went out: the deposit
    refuses, and says what became of the allowance this run sent (here the revoke is refused
    by the same guard, and the message says the allowance still stands)."""
    w = world(deposit="4.5")
    real_counts = w.chain.transaction_counts

    def counts(address: str) -> tuple[int, int]:
        latest, pending = real_counts(address)
        return (latest, pending + 1) if len(w.chain.raw_sent) >= 1 else (latest, pending)

    w.chain.transaction_counts = counts  # type: ignore[method-assign]
    (result,) = execute(w.conn, _top_up(w, 4_500_000))
    assert len(w.chain.raw_sent) == 1  # the approve; no deposit
    assert result.error is not None and "no journal entry explains it" in result.error
    assert "allowance" in result.error and "still stands" in result.error


def _count_journal_reads(w: World) -> list[str]:
    """Every LIST and read of the account's sender folder from now on (its path, in order)."""
    folder = f"{STATE}/journal/_senders/{SEPOLIA.chain_id}/{w.spec.address.lower()}"
    seen: list[str] = []
    list_state, read_state = w.vault.list_state, w.vault.read_state

    def listed(prefix: str) -> list[str]:
        if prefix.startswith(folder):
            seen.append(f"LIST {prefix}")
        return list_state(prefix)

    def read(path: str) -> tuple[dict[str, Any], int] | None:
        if path.startswith(folder):
            seen.append(f"GET {path}")
        return read_state(path)

    w.vault.list_state = listed  # type: ignore[method-assign]
    w.vault.read_state = read  # type: ignore[method-assign]
    return seen


def test_a_fresh_senders_journal_is_not_read_before_each_transaction() -> None:
    """The run holds the address's lock (apply/lock.py) and listed the journal's senders under
    it: nobody else journals for this one, so what the run journals itself is kept, not read
    back before the approve and again before the deposit (issue #21: 9 Vault reads an account
    on the WAN)."""
    w = world(deposit="4.5")
    reads = _count_journal_reads(w)
    (result,) = execute(w.conn, _top_up(w, 4_500_000))
    assert result.failed is None, result.error
    assert len(w.chain.raw_sent) == 2
    assert reads == []
    assert w.vault.state_keys(f"{STATE}/journal/") == []


def test_a_journaled_sender_is_read_once_then_kept_by_the_runs_own_writes() -> None:
    w = world(deposit="4.5")
    signer = LocalKeySigner(w.private_key)
    tx = w.chain.build_approve(w.spec.address, 4_500_000)
    raw = signer.sign_transaction(tx)
    w.chain.send_raw(raw)  # a killed run's approve, mined
    Journal(w.vault, STATE).record(
        StoredTx(
            w.spec.name,
            "approve",
            int(tx["nonce"]),
            w.chain.hash_of_raw(raw),
            "0x" + raw.hex(),
            4_500_000,
            sender=w.spec.address,
            chain_id=SEPOLIA.chain_id,
        )
    )
    reads = _count_journal_reads(w)
    (result,) = execute(w.conn, _top_up(w, 4_500_000))
    assert result.failed is None, result.error
    assert len(w.chain.raw_sent) == 2  # the killed run's approve, then the deposit alone
    assert [r for r in reads if r.startswith("LIST")] == [
        f"LIST {STATE}/journal/_senders/{SEPOLIA.chain_id}/{w.spec.address.lower()}"
    ]
    assert w.vault.state_keys(f"{STATE}/journal/") == []


def test_the_nodes_nonces_are_asked_in_each_build_not_in_round_trips_of_their_own() -> None:
    """The pending-nonce guard rides in the build's batch (after the deposit refresh, right
    before a nonce is handed out): no JSON-RPC round trip of its own before each transaction,
    and none twice for an approve or a deposit (5 round trips an account on the WAN)."""
    w = world(deposit="4.5")
    building = [False]
    asked: list[bool] = []  # one per ask: whether it came from inside a build
    real_tx, real_counts = w.chain._tx, w.chain.transaction_counts

    def tx(*args: Any) -> dict[str, Any]:
        building[0] = True
        try:
            return real_tx(*args)
        finally:
            building[0] = False

    def counts(address: str) -> tuple[int, int]:
        asked.append(building[0])
        return real_counts(address)

    w.chain._tx = tx  # type: ignore[method-assign]
    w.chain.transaction_counts = counts  # type: ignore[method-assign]
    (result,) = execute(w.conn, _top_up(w, 4_500_000))
    assert result.failed is None, result.error
    assert len(w.chain.raw_sent) == 2
    assert asked == [True, True]  # the approve's build, the deposit's build
