"""An account's transactions back to back (issue #21), on the unit fakes: journaled before each
broadcast, all sent before any is awaited, forgotten only once final; a deposit that reverts
when mined after this run's approve is followed by approve(0)."""

from __future__ import annotations

from support.apply_fakes import World, top_up_plan, world

from provisioner.apply.executor import execute
from provisioner.clients.chain import Receipt
from provisioner.plan.model import Plan

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
