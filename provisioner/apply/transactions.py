"""Transactions where money moves: every guard between a step and the chain.

Before a transaction is built nothing of its sender may wait for a signer or a person
(``guard_sender``), and its build checks, in its own batch, that the sender's pending nonces
are all journaled ones (``explained``) before a nonce is handed out; a deposit is charged to the
run's budget; what a signer signed is decoded, and what it sent is fetched, and each is
compared with what was asked; the entry is journaled before the broadcast and forgotten
only once final, with ``confirmations`` blocks on top (``send``, ``await_confirmations``);
a journaled one a killed run left is settled the same way (``settle_transactions``).
An account's transactions go out back to back in nonce order, each simulated on the pending
state, and are awaited together at its end; a deposit that cannot happen after this run
approved it is followed by ``approve(0)``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from provisioner.apply.budget import OverBudget
from provisioner.apply.context import AccountContext, StepFailed
from provisioner.apply.ports import ChainPort
from provisioner.clients.chain import ChainError, NonceCheck, NonceTaken, Receipt
from provisioner.failpoints import failpoint
from provisioner.journal import (
    AWAITING,
    CONFIRMED,
    DROPPED,
    FAILED,
    MINED,
    PENDING,
    SUPERSEDED,
    StoredTx,
    tx_status,
)
from provisioner.money import format_usdc, from_base_units
from provisioner.signers.base import SignerError
from provisioner.signers.verify import SignerMismatch, check_sent, check_signed


def usdc(base_units: int) -> str:
    return format_usdc(from_base_units(base_units))


def charge(ctx: AccountContext, amount: int, what: str) -> None:
    try:
        ctx.budget.charge(amount, what)
    except OverBudget as exc:
        raise StepFailed(str(exc)) from None


def guard_sender(ctx: AccountContext) -> list[StoredTx]:
    """Before building a transaction: no entry of this sender's journal (under any account
    name) may be waiting for its signer or a person; the journal as read. Its build then
    checks the node's pending nonces against it (``explained``, given as ``nonces``)."""
    entries = ctx.transactions()
    for tx in entries:
        if tx.problem or tx.awaiting_signer:
            raise StepFailed(_held(ctx, tx))
    return entries


def explained(ctx: AccountContext, entries: list[StoredTx]) -> NonceCheck:
    """The node half of the guard, run on the counts a build asks in its own batch (right
    before a nonce is handed out, after whatever the step did since it read ``entries``):
    every nonce of this sender pending at the node must be one the journal knows. Otherwise
    another tool, another run (another state_path) or a late signer is in flight, and a new
    transaction could pay twice."""
    known = {tx.nonce for tx in entries}

    def check(latest: int, pending: int) -> None:
        for nonce in range(latest, pending):
            if nonce not in known:
                raise StepFailed(
                    f"nonce {nonce} of {ctx.spec.address} is pending at the node and no journal "
                    "entry explains it (another tool, or a run with another state_path?); nothing "
                    f"is sent for {ctx.spec.name} until it is mined or dropped"
                )

    return check


def _held(ctx: AccountContext, tx: StoredTx) -> str:
    if tx.problem:
        why = f"journaled {tx.intent} with nonce {tx.nonce} is held for a person: {tx.problem}"
    else:
        why = (
            f"journaled {tx.intent} with nonce {tx.nonce} is awaiting the signer (asked at "
            f"{tx.recorded_at or 'an unknown time'}; it may still send it, with this nonce or another)"
        )
    return (
        f"{why}; nothing new is sent from {ctx.spec.address} until its nonce is used, or a person "
        f"who knows the signer refused it runs: provision journal resolve -f {ctx.conn.manifest.path} "
        f"--account {ctx.spec.name} --nonce {tx.nonce}"
    )


def send(ctx: AccountContext, intent: str, tx: dict[str, object], *, amount: int) -> str:
    """Sign, verify, journal, broadcast; the hash. The journal entry is written before the
    broadcast and forgotten only once the transaction is final (``await_confirmations``)."""
    signer = ctx.signer
    nonce = int(str(tx["nonce"]))
    base = StoredTx(
        ctx.spec.name, intent, nonce, "", "", amount, ctx.spec.address, chain_id=ctx.chain_id
    )
    try:
        if signer.can_sign_raw_transactions:
            raw = signer.sign_transaction(tx)
            failpoint(f"after_sign:{intent}")
            check_signed(raw, tx)  # what is journaled and paid is what was asked
            tx_hash = ctx.conn.chain.hash_of_raw(raw)
            entry = replace(base, tx_hash=tx_hash, raw_tx="0x" + raw.hex())
            ctx.journal.record(entry)
            failpoint(f"after_journal_record:{intent}")
            ctx.conn.chain.send_raw(raw)
        else:
            # The signer broadcasts and only then tells the hash: journal the request with its
            # nonce first. Unanswered, it stays as awaiting the signer and blocks this sender.
            entry = base
            ctx.journal.record(entry)
            failpoint(f"after_journal_record:{intent}")
            try:
                tx_hash = signer.send_transaction(tx)
            except SignerError as exc:
                raise StepFailed(f"{exc}; {_held(ctx, entry)}") from None
            failpoint(f"after_remote_send:{intent}")
            entry = ctx.journal.note_hash(entry, tx_hash)
            _check_broadcast(ctx, entry, tx)
    except Exception:
        # The nonce handed out for this transaction may be unused now: re-read it from the
        # node so the next transaction does not leave a gap and get stuck.
        ctx.conn.chain.nonces.resync(ctx.spec.address)
        raise
    failpoint(f"after_broadcast:{intent}")
    ctx.log(f"{intent} sent: {tx_hash}")
    ctx.tx_hashes.append(tx_hash)
    ctx.sent.append(entry)
    # Not waited for here: the account's next transaction is simulated on the pending state
    # (which holds this one) and follows it in nonce order, so all of them can share a block;
    # they are awaited once, until final, at the account's end (``await_confirmations``).
    ctx.unconfirmed.append(entry)
    return tx_hash


def await_confirmations(ctx: AccountContext) -> None:
    """Wait until the account's transactions are mined, in nonce order, then until each is
    final (journaled before broadcast, forgotten only then); one that failed does not stop
    the wait for the others, and the failures are raised at the end. A deposit that reverted
    after this run approved it leaves no allowance standing: the approve is revoked and
    awaited too. An unreachable node ends the wait: what is left stays journaled."""
    failures: list[str] = []
    left: list[StoredTx] = []  # broadcast, not yet final
    watch = _Watch(ctx.conn.chain, left)
    try:
        while ctx.unconfirmed:
            left += ctx.unconfirmed
            ctx.unconfirmed.clear()  # a revoke sent meanwhile joins it again
            for tx in list(left):
                if not _settle_one(ctx, tx, failures, final=False, watch=watch):
                    left.remove(tx)
            for tx in list(left):
                if _settle_one(ctx, tx, failures, final=True, watch=watch):
                    ctx.journal.forget_tx(tx)
                    ctx.log(f"{tx.intent} confirmed: {tx.tx_hash}")
                left.remove(tx)
    except ChainError as exc:
        left += ctx.unconfirmed
        ctx.unconfirmed.clear()
        named = ", ".join(f"{t.intent} {t.tx_hash or f'with nonce {t.nonce}'}" for t in left)
        failures.append(
            f"{named} {'was' if len(left) == 1 else 'were'} broadcast and journaled, but {exc}; "
            "the next apply looks them up by hash before anything else"
        )
    if failures:
        raise StepFailed("; then ".join(failures))


def _settle_one(
    ctx: AccountContext, tx: StoredTx, failures: list[str], *, final: bool, watch: _Watch
) -> bool:
    """Wait for ``tx`` mined (or final); False, with the failure noted, when it cannot be."""
    try:
        _await_final(ctx, tx, final=final, seen_mined=final, watch=watch)
    except StepFailed as exc:
        failure = str(exc)
        if tx.intent == "deposit" and _approved_here(ctx):
            failure += f"; {_revoke(ctx, failure)}"
        failures.append(failure)
        return False
    return True


def _approved_here(ctx: AccountContext) -> bool:
    """Whether this run sent the account an allowance it has not revoked since."""
    approved = False
    for tx in ctx.sent:
        if tx.intent == "approve":
            approved = tx.amount > 0
    return approved


@contextlib.contextmanager
def revoke_on_failure(ctx: AccountContext, what: str) -> Iterator[None]:
    """Around a deposit's checks and simulation, before anything of it is signed: if it cannot
    happen after this run sent an approve for it, send ``approve(0)`` before failing the step."""
    try:
        yield
    except (StepFailed, ChainError) as exc:
        if not _approved_here(ctx):
            raise
        reason = str(exc)
        raise StepFailed(f"{what} cannot be made ({reason}); {_revoke(ctx, reason)}") from None


def _revoke(ctx: AccountContext, reason: str) -> str:
    """Send ``approve(exchange, 0)`` behind the account's other transactions; what was done."""
    ctx.log(f"revoking the allowance sent for the deposit: {reason}")
    try:
        entries = guard_sender(ctx)
        tx = ctx.conn.chain.build_approve(ctx.spec.address, 0, nonces=explained(ctx, entries))
        tx_hash = send(ctx, "approve", tx, amount=0)
    except Exception as exc:  # noqa: BLE001 - reported with the step's failure
        why = str(exc) if isinstance(exc, StepFailed | ChainError) else type(exc).__name__
        return (
            f"revoking the allowance this run approved failed too ({why}): it still stands; "
            "the next apply leaves it for the deposit that needs it"
        )
    return f"the allowance this run approved was revoked (approve 0: {tx_hash})"


def _check_broadcast(ctx: AccountContext, entry: StoredTx, asked: dict[str, object]) -> None:
    """Fetch what the remote signer broadcast and compare it with what it was asked to send;
    a difference is kept in the journal for a person (it may have paid already)."""
    found = _node_copy(ctx, entry.tx_hash)
    if found is None:
        raise StepFailed(
            f"the remote signer answered {entry.tx_hash} for {entry.intent} with nonce {entry.nonce}, "
            f"but the node does not know that transaction after {ctx.receipt_timeout:.0f}s; the journal "
            "keeps it and the next apply looks again"
        )
    try:
        check_sent(found, asked, ctx.spec.address)
    except SignerMismatch as exc:
        ctx.journal.note_problem(entry, str(exc))
        raise StepFailed(f"{exc}; {_held(ctx, replace(entry, problem=str(exc)))}") from None


def _node_copy(
    ctx: AccountContext, tx_hash: str, poll_seconds: float = 0.25
) -> dict[str, Any] | None:
    deadline = time.monotonic() + ctx.receipt_timeout
    while True:
        found = ctx.conn.chain.transaction(tx_hash)
        if found is not None or time.monotonic() > deadline:
            return found
        time.sleep(poll_seconds)


class _Watch:
    """An account's view of the chain while it waits for its transactions: the head from the
    run's shared watcher (``ChainPort.head``), and the receipts of every transaction in
    ``waiting``, fetched in one batch once per head. Nothing is asked between blocks: nothing
    a receipt tells can change before the next one. Serves ``tx_status`` as its chain."""

    def __init__(self, chain: ChainPort, waiting: list[StoredTx]) -> None:
        self._chain = chain
        self._waiting = waiting  # the caller's list, as it changes
        self._head: int | None = None
        self._receipts: dict[str, Receipt | None] = {}
        self._receipts_at: int | None = None  # the head they were fetched at

    def block_number(self) -> int:
        if self._head is None:
            self._head = self._chain.head()
        return self._head

    def next_block(self, deadline: float) -> None:
        """Until the shared head moved from the one last looked at (a reorg may lower it), or
        ``deadline``."""
        self._head = self._chain.head_after(self.block_number(), deadline - time.monotonic())

    def receipt(self, tx_hash: str) -> Receipt | None:
        head = self.block_number()
        if self._receipts_at != head or tx_hash not in self._receipts:
            hashes = list(
                dict.fromkeys([tx_hash, *(t.tx_hash for t in self._waiting if t.tx_hash)])
            )
            self._receipts, self._receipts_at = self._chain.receipts(hashes), head
        return self._receipts[tx_hash]

    def transaction_known(self, tx_hash: str) -> bool:
        return self._chain.transaction_known(tx_hash)

    def transaction_counts(self, address: str) -> tuple[int, int]:
        return self._chain.transaction_counts(address)

    def transaction_count_at(self, address: str, block: int) -> int:
        return self._chain.transaction_count_at(address, block)


def _await_final(
    ctx: AccountContext,
    tx: StoredTx,
    *,
    final: bool = True,
    seen_mined: bool = False,
    watch: _Watch | None = None,
) -> None:
    """Wait until ``tx`` is final: mined with ``confirmations`` blocks on top (or, not ``final``,
    just mined). If it leaves the chain meanwhile (a reorg) or the node forgets it, the same
    signed bytes go out again; a revert or a timeout fails the step and, but for the revert,
    the journal keeps the entry. Looked at again on each new block (``watch``)."""
    deadline = time.monotonic() + ctx.receipt_timeout
    what = f"{tx.intent} {tx.tx_hash or f'with nonce {tx.nonce}'}"
    watch = watch or _Watch(ctx.conn.chain, [tx])
    while True:
        status = tx_status(watch, tx, ctx.confirmations)
        if status in (MINED, CONFIRMED) and not seen_mined:
            seen_mined = True
            ctx.log(f"{tx.intent} mined: {tx.tx_hash}" if tx.tx_hash else f"journaled {what} mined")
            failpoint(f"after_receipt:{tx.intent}")
        if status == CONFIRMED or (status == MINED and not final):
            return
        if status == FAILED:
            ctx.journal.forget_tx(tx)
            raise StepFailed(f"{what} reverted")
        if status == SUPERSEDED:
            raise StepFailed(
                f"{what}: its nonce {tx.nonce} was used by another transaction; the next apply settles it"
            )
        if status == DROPPED and seen_mined:
            seen_mined = False
            ctx.log(f"{what} left the chain (a reorg?)")
        if status == DROPPED and tx.raw_tx and not _rebroadcast(ctx, tx):
            ctx.journal.forget_tx(tx)
            raise StepFailed(f"{what}: its nonce {tx.nonce} was used by another transaction")
        if time.monotonic() > deadline:
            raise StepFailed(
                f"{what} is {status}, not yet final ({ctx.confirmations} confirmations) after "
                f"{ctx.receipt_timeout:.0f}s; the journal keeps it: the next apply looks it up "
                "before anything else"
            )
        watch.next_block(deadline)


def _rebroadcast(ctx: AccountContext, tx: StoredTx) -> bool:
    """Send the journaled bytes again (the same transaction: it can land once at most); False
    when their nonce went to another transaction (then they never can)."""
    ctx.log(f"rebroadcasting journaled {tx.intent} {tx.tx_hash}")
    try:
        ctx.conn.chain.send_raw(bytes.fromhex(tx.raw_tx.removeprefix("0x")))
    except NonceTaken as exc:
        ctx.log(f"journaled {tx.intent} {tx.tx_hash} can never be mined: {exc}")
        return False
    failpoint("settle:after_rebroadcast")
    return True


def settle_transactions(ctx: AccountContext) -> None:
    """Journaled transactions are waited for until final, or rebroadcast (the same signed
    bytes) if the node forgot them. An entry is forgotten only once its fate is final; one
    waiting for its signer or a person stops the account."""
    for tx in ctx.transactions():
        if tx.problem:
            raise StepFailed(_held(ctx, tx))
        status = tx_status(ctx.conn.chain, tx, ctx.confirmations)
        what = f"journaled {tx.intent} {tx.tx_hash or f'with nonce {tx.nonce}'}"
        if status == AWAITING:
            raise StepFailed(_held(ctx, tx))
        if status == DROPPED and not tx.raw_tx:
            raise StepFailed(
                f"{what}: the remote signer said it sent it, the node does not know it and its "
                f"nonce is still free (a private relay? a late broadcast?); {_held(ctx, tx)}"
            )
        if status == DROPPED:
            charged = tx.amount if tx.intent == "deposit" else 0
            charge(ctx, charged, f"the journaled deposit of {ctx.spec.name} ({tx.tx_hash})")
            status = PENDING if _rebroadcast(ctx, tx) else SUPERSEDED
            if status == SUPERSEDED:
                ctx.budget.refund(charged)
        if status in (PENDING, MINED):
            _await_final(ctx, tx)
            ctx.log(f"{what} confirmed")
        elif status == CONFIRMED:
            ctx.log(f"{what} mined and confirmed")
        elif status == SUPERSEDED:
            ctx.log(f"{what} can never be mined: its nonce went to another transaction")
        elif status == FAILED:
            ctx.log(f"{what} reverted; the step runs again if still needed")
        failpoint("settle:before_forget")
        ctx.journal.forget_tx(tx)
