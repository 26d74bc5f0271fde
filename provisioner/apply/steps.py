"""One function per step kind. Each checks the world again right before it acts (check-then-act),
so running a step twice, or after a crash, never repeats a side effect that already happened."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from provisioner import records
from provisioner.apply.budget import OverBudget
from provisioner.apply.context import AccountContext, StepFailed
from provisioner.clients.chain import ChainError, NonceTaken
from provisioner.clients.dydx import (
    AlreadyOnboarded,
    ApiCredentials,
    DydxError,
    OnboardedAccount,
    StarkKeyPair,
)
from provisioner.clients.retry import RetryPolicy
from provisioner.clients.vault import ForeignSecret, VaultError
from provisioner.failpoints import failpoint
from provisioner.journal import (
    AWAITING,
    CONFIRMED,
    DROPPED,
    FAILED,
    MINED,
    PENDING,
    SUPERSEDED,
    KeyIntent,
    StoredTx,
    key_orphans,
    tx_status,
    unexpected_keys,
)
from provisioner.money import deposit_need, format_usdc, from_base_units, in_flight, to_base_units
from provisioner.plan.model import Step, StepKind
from provisioner.plan.params import (
    ApiKeyParams,
    ApproveParams,
    DeleteApiKeyParams,
    DepositParams,
    StarkKeyParams,
)
from provisioner.records import API_FIELDS, API_KEY, MANAGED_BY
from provisioner.signers.base import SignerError
from provisioner.signers.verify import SignerMismatch, check_sent, check_signed

WRITE_RETRY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=4.0)  # Vault writes (CAS)
CREATE_ATTEMPTS = 3  # POST /v3/api-keys, each retry after settling the ambiguous one


def _stark_record(
    ctx: AccountContext, pair: StarkKeyPair, account: OnboardedAccount | None
) -> dict[str, str]:
    return records.stark_secret(pair, ctx.spec.address, ctx.conn.manifest.network.name, account)


def _api_record(ctx: AccountContext, creds: ApiCredentials) -> dict[str, str]:
    return records.api_key_secret(creds, ctx.spec.address, ctx.conn.manifest.network.name)


def _write(ctx: AccountContext, path: str, data: dict[str, str], *, label: str) -> None:
    """Write an owned secret, retrying what Vault failed: each try reads again and writes with
    check-and-set against that version, so a write that landed unanswered is seen, not repeated."""
    attempt = 1
    while True:
        try:
            _write_once(ctx, path, data, label)
            return
        except ForeignSecret:
            raise
        except VaultError as exc:  # CasConflict too: the next read shows whose write it was
            if attempt >= WRITE_RETRY.max_attempts:
                raise
            delay = WRITE_RETRY.backoff(attempt)
            ctx.log(
                f"storing {path}: {exc}; retry {attempt}/{WRITE_RETRY.max_attempts - 1} in {delay:.2f}s"
            )
            time.sleep(delay)
            attempt += 1


def _write_once(ctx: AccountContext, path: str, data: dict[str, str], label: str) -> None:
    current = ctx.conn.vault.read(path)
    if current.entry.is_foreign(ctx.spec.name):
        raise StepFailed(
            f"{path} holds data not written by {MANAGED_BY} for {ctx.spec.name}; left untouched"
        )
    if current.entry.exists and dict(current.data) == data:
        return
    failpoint(f"before_vault_write:{label}")
    # write_owned sets the ownership metadata first, then the data with check-and-set: a
    # crash in between leaves an empty path of ours, never data without an owner.
    ctx.conn.vault.write_owned(
        path,
        data,
        account=ctx.spec.name,
        expected_version=current.entry.version,
        current=current.entry,
    )
    failpoint(f"after_vault_write:{label}")
    ctx.log(f"stored {path}")


def stark_key(ctx: AccountContext, step: Step) -> None:
    pair = ctx.conn.dydx.derive_stark_key(ctx.signer, check_deterministic=True)
    failpoint("after_derive:stark_key")
    ctx.remember_stark(pair)
    account = None
    # Looked at under this account's lock just now: no user at dYdX. Then the onboard step
    # that follows is the check (dYdX answers 409 if one appeared since, and the keys are
    # compared there), and the public users/exists budget is kept for the other accounts.
    absent = step.params_as(StarkKeyParams).dydx_user == "absent"
    if not absent and ctx.conn.dydx.user_exists(ctx.spec.address):
        account = ctx.conn.dydx.get_account(ctx.spec.address, ctx.credentials())
        _same_stark_key(ctx, pair, account)
    _write(ctx, ctx.spec.stark_key_path, _stark_record(ctx, pair, account), label="stark_key")


def onboard(ctx: AccountContext, step: Step) -> None:
    pair = ctx.stark()
    try:
        account, creds = ctx.conn.dydx.onboard(ctx.signer, pair)
    except AlreadyOnboarded:
        ctx.log("already onboarded (dYdX answered 409)")
        account = ctx.conn.dydx.get_account(ctx.spec.address, ctx.credentials())
        _same_stark_key(ctx, pair, account)
    else:
        failpoint("after_onboard")
        ctx.remember_credentials(creds)
        ctx.log(f"onboarded: position {account.position_id}")
        default = next((k for k in ctx.spec.api_keys if k.is_default), None)
        if default is not None:  # the default key comes with onboarding: keep it right away
            _write(ctx, default.secret_path, _api_record(ctx, creds), label="default_api_key")
    _write(ctx, ctx.spec.stark_key_path, _stark_record(ctx, pair, account), label="stark_account")


def record_account(ctx: AccountContext, step: Step) -> None:
    account = ctx.conn.dydx.get_account(ctx.spec.address, ctx.credentials())
    pair = ctx.stark()
    _same_stark_key(ctx, pair, account)
    _write(ctx, ctx.spec.stark_key_path, _stark_record(ctx, pair, account), label="stark_account")


def _same_stark_key(ctx: AccountContext, pair: StarkKeyPair, account: OnboardedAccount) -> None:
    if account.stark_key != pair.public_key:
        raise StepFailed(
            f"the STARK key of {ctx.spec.name} ({pair.public_key_hex}) differs from the one dYdX has "
            f"for {ctx.spec.address} ({hex(account.stark_key)}); refusing to record it"
        )


def api_key(ctx: AccountContext, step: Step) -> None:
    params = step.params_as(ApiKeyParams)
    name, path = params.name, params.path
    if params.is_default:  # recovered from the onboarding signature: nothing created at dYdX
        creds = ctx.conn.dydx.recover_default_credentials(ctx.signer)
        _write(ctx, path, _api_record(ctx, creds), label="default_api_key")
        return
    listed = ctx.conn.dydx.list_api_keys(ctx.spec.address, ctx.credentials())
    stored = ctx.conn.vault.read(path)
    complete = all(stored.data.get(f) for f in API_FIELDS)
    if complete and stored.entry.is_ours(ctx.spec.name) and stored.data[API_KEY] in listed:
        ctx.log(f"API key {name} is already at dYdX and in {path} (found by a fresh check)")
        return
    intent = KeyIntent(account=ctx.spec.name, name=name, path=path, listed_before=listed)
    ctx.journal.record_key_intent(intent)
    failpoint("after_intent:api_key")
    creds = _create_api_key(ctx, intent)
    failpoint("after_create:api_key")
    ctx.log(f"created API key {name} ({creds.key})")
    try:
        intent = ctx.journal.note_created(intent, creds.key)
    except VaultError as exc:  # the intent still names the keys listed before: enough to settle
        ctx.log(f"could not note key {creds.key} in the journal ({exc})")
    failpoint("after_intent_update:api_key")
    try:
        _write(ctx, path, _api_record(ctx, creds), label="api_key")
    except Exception as exc:  # noqa: BLE001 - whatever failed, no key may stay without its secret
        raise _unstored_key_deleted(ctx, intent, creds.key, exc) from None
    ctx.journal.forget(ctx.spec.name, intent.key)


def _create_api_key(ctx: AccountContext, intent: KeyIntent) -> ApiCredentials:
    """POST /v3/api-keys; after an ambiguous failure (timeout, dropped connection, 5xx) the key
    may exist: delete whatever it created that Vault lacks, then try again."""
    attempt = 1
    while True:
        try:
            creds = ctx.conn.dydx.create_api_key(ctx.signer)
        except DydxError as exc:
            if not exc.ambiguous:  # refused: nothing was created
                ctx.journal.forget(ctx.spec.name, intent.key)
                raise
            ctx.log(
                f"POST /v3/api-keys for {intent.name}: {exc}; it may have created a key: "
                "comparing dYdX's keys with Vault"
            )
            _delete_orphans(ctx, intent)
            if attempt >= CREATE_ATTEMPTS:
                ctx.journal.forget(ctx.spec.name, intent.key)
                raise
            attempt += 1
            continue
        if attempt > 1:  # an earlier, unanswered attempt may have landed late
            _delete_orphans(ctx, intent, keep={creds.key})
        return creds


def _delete_orphans(ctx: AccountContext, intent: KeyIntent, keep: set[str] | None = None) -> None:
    """Delete at dYdX the keys this intent created whose secret Vault does not hold (never the default)."""
    listed = ctx.conn.dydx.list_api_keys(ctx.spec.address, ctx.credentials())
    default = ctx.default_key_id()
    stored = ctx.stored_key_ids() | (keep or set())
    others = unexpected_keys(intent, listed, stored, default) - (keep or set())
    if others:
        ctx.log(
            f"API key(s) {', '.join(sorted(others))} appeared at dYdX while {intent.name} was being "
            "created, and the journal does not say this tool created them: left alone"
        )
    for key in sorted(key_orphans(intent, listed, stored, default)):
        ctx.conn.dydx.delete_api_key(ctx.signer, key, default_key=default)
        ctx.log(
            f"deleted API key {key} at dYdX: created for {intent.name} by an interrupted attempt, "
            "its secret never reached Vault"
        )
        failpoint("settle:after_orphan_delete")


def _unstored_key_deleted(
    ctx: AccountContext, intent: KeyIntent, key_id: str, cause: Exception
) -> StepFailed:
    """Storing a new key failed: delete it at dYdX rather than leave a live key nobody holds."""
    why = str(cause) if isinstance(cause, StepFailed | VaultError) else type(cause).__name__
    try:
        ctx.conn.dydx.delete_api_key(ctx.signer, key_id, default_key=ctx.default_key_id())
    except Exception as exc:  # noqa: BLE001 - reported; the journal keeps the intent
        return StepFailed(
            f"storing API key {intent.name} at {intent.path} failed ({why}), and deleting the new key "
            f"{key_id} at dYdX failed too ({exc}); the journal keeps it: the next apply deletes it"
        )
    ctx.log(f"deleted API key {key_id} at dYdX: its secret could not be stored")
    with contextlib.suppress(VaultError):  # else the next run finds no orphan and clears it
        ctx.journal.forget(ctx.spec.name, intent.key)
    return StepFailed(
        f"storing API key {intent.name} at {intent.path} failed ({why}); the new key {key_id} was "
        "deleted at dYdX, so no key is left without its secret"
    )


def delete_api_key(ctx: AccountContext, step: Step) -> None:
    default_id = ctx.default_key_id()  # derived from the onboarding signature, never read
    key_id = step.params_as(DeleteApiKeyParams).key_id
    if key_id.strip().lower() == default_id.strip().lower():
        raise StepFailed(f"{default_id} is the default API key: never deleted")
    if key_id not in ctx.conn.dydx.list_api_keys(ctx.spec.address, ctx.credentials()):
        ctx.log(f"API key {key_id} is already gone at dYdX")
        return
    ctx.conn.dydx.delete_api_key(ctx.signer, key_id, default_key=default_id)
    ctx.log(f"deleted API key {key_id}")


def register(ctx: AccountContext, step: Step) -> None:
    pair = ctx.stark()
    owner = ctx.conn.chain.read_accounts([(ctx.spec.address, pair.public_key)])[
        ctx.spec.address
    ].stark_key_owner
    if owner is not None:
        if owner.lower() != ctx.spec.address.lower():
            raise StepFailed(f"STARK key is registered on L1 to {owner}")
        return
    signature = ctx.conn.dydx.registration_signature(ctx.spec.address, ctx.credentials())
    _guard_sender(ctx)
    tx = ctx.conn.chain.build_register(
        ctx.spec.address, ctx.spec.address, pair.public_key, signature
    )
    _send(ctx, "register", tx, amount=0)


def approve(ctx: AccountContext, step: Step) -> None:
    amount = step.params_as(ApproveParams).amount_base_units
    current = ctx.conn.chain.read_accounts([(ctx.spec.address, None)])[
        ctx.spec.address
    ].usdc_allowance
    if current >= amount:
        return
    _guard_sender(ctx)
    _send(ctx, "approve", ctx.conn.chain.build_approve(ctx.spec.address, amount), amount=amount)


def deposit(ctx: AccountContext, step: Step) -> None:
    """Top up to the manifest's target, recomputed from the journal, then fresh chain events
    (in that order: a deposit mined and forgotten in between is then in the events). Never
    more than the plan showed, never past the run's ceiling: never pay twice."""
    planned = step.params_as(DepositParams).amount_base_units
    target = to_base_units(ctx.spec.deposit)  # the manifest's, never a plan file's
    pair = ctx.stark()
    account = ctx.conn.dydx.get_account(ctx.spec.address, ctx.credentials())
    pending = in_flight(
        (tx.intent, tx.amount, tx_status(ctx.conn.chain, tx, ctx.confirmations))
        for tx in _guard_sender(ctx)
        if tx.intent == "deposit"  # only their status is asked of the node
    )
    confirmed, unconfirmed = ctx.conn.chain.deposit_totals(refresh=True)
    position = (pair.public_key, account.position_id)
    deposited = confirmed.get(position, 0) + unconfirmed.get(position, 0)
    need = deposit_need(target, deposited, pending)
    if not need:
        ctx.log("deposit already covered")
        return
    if need > planned:
        raise StepFailed(
            f"the deposit needed now ({_usdc(need)} USDC) is more than the plan showed "
            f"({_usdc(planned)} USDC); nothing was sent: run plan again"
        )
    if need != planned:
        ctx.log(
            f"deposit amount recomputed from fresh facts: {_usdc(need)} USDC (planned {_usdc(planned)} USDC)"
        )
    tx = ctx.conn.chain.build_deposit(ctx.spec.address, pair.public_key, account.position_id, need)
    _charge(ctx, need, f"the deposit of {ctx.spec.name}")
    _send(ctx, "deposit", tx, amount=need)


def _usdc(base_units: int) -> str:
    return format_usdc(from_base_units(base_units))


def _charge(ctx: AccountContext, amount: int, what: str) -> None:
    try:
        ctx.budget.charge(amount, what)
    except OverBudget as exc:
        raise StepFailed(str(exc)) from None


def _guard_sender(ctx: AccountContext) -> list[StoredTx]:
    """Before building a transaction: every nonce of this sender that is pending at the node
    must be one the journal knows (under any account name), and no entry may be waiting for
    its signer or a person. Otherwise another tool, another run (another state_path) or a
    late signer is in flight, and a new transaction could pay twice."""
    entries = ctx.transactions()
    for tx in entries:
        if tx.problem or tx.awaiting_signer:
            raise StepFailed(_held(ctx, tx))
    latest, pending = ctx.conn.chain.transaction_counts(ctx.spec.address)
    known = {tx.nonce for tx in entries}
    for nonce in range(latest, pending):
        if nonce not in known:
            raise StepFailed(
                f"nonce {nonce} of {ctx.spec.address} is pending at the node and no journal entry "
                "explains it (another tool, or a run with another state_path?); nothing is sent for "
                f"{ctx.spec.name} until it is mined or dropped"
            )
    return entries


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


def _send(ctx: AccountContext, intent: str, tx: dict[str, object], *, amount: int) -> None:
    """Sign, verify, journal, broadcast, wait for confirmations. The journal entry is written
    before the broadcast and forgotten only once the transaction is final."""
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
    # What later steps need is the transaction mined (an approve before the deposit's gas
    # estimate); its confirmations accrue meanwhile and are waited for at the account's end.
    try:
        _await_final(ctx, entry, final=intent == "deposit")
    except ChainError as exc:
        raise StepFailed(
            f"{intent} {tx_hash} was broadcast and journaled, but {exc}; "
            "the next apply looks it up by hash before anything else"
        ) from None
    if intent != "deposit":
        ctx.unconfirmed.append(entry)
        return
    ctx.journal.forget_tx(entry)
    ctx.log(f"{intent} confirmed: {tx_hash}")


def await_confirmations(ctx: AccountContext) -> None:
    """The account's transactions that later steps only needed mined: wait until final."""
    while ctx.unconfirmed:
        tx = ctx.unconfirmed[0]
        _await_final(ctx, tx, seen_mined=True)
        ctx.journal.forget_tx(tx)
        ctx.unconfirmed.pop(0)
        ctx.log(f"{tx.intent} confirmed: {tx.tx_hash}")


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


def _await_final(
    ctx: AccountContext,
    tx: StoredTx,
    *,
    final: bool = True,
    seen_mined: bool = False,
    poll_seconds: float = 0.25,
) -> None:
    """Wait until ``tx`` is final: mined with ``confirmations`` blocks on top (or, not ``final``,
    just mined). If it leaves the chain meanwhile (a reorg) or the node forgets it, the same
    signed bytes go out again; a revert or a timeout fails the step and, but for the revert,
    the journal keeps the entry."""
    deadline = time.monotonic() + ctx.receipt_timeout
    what = f"{tx.intent} {tx.tx_hash or f'with nonce {tx.nonce}'}"
    while True:
        status = tx_status(ctx.conn.chain, tx, ctx.confirmations)
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
        time.sleep(poll_seconds)


def settle_journal(ctx: AccountContext) -> None:
    """Finish what a killed run left, before any step: orphaned API keys are deleted at dYdX;
    journaled transactions are waited for until final, or rebroadcast (the same signed bytes)
    if the node forgot them. An entry is forgotten only once its fate is final; one waiting
    for its signer or a person stops the account."""
    for intent in ctx.journal.key_intents(ctx.spec.name):
        _delete_orphans(ctx, intent)
        ctx.journal.forget(ctx.spec.name, intent.key)
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
            _charge(ctx, charged, f"the journaled deposit of {ctx.spec.name} ({tx.tx_hash})")
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


RUNNERS: dict[StepKind, Callable[[AccountContext, Step], None]] = {
    StepKind.STARK_KEY: stark_key,
    StepKind.ONBOARD: onboard,
    StepKind.RECORD_ACCOUNT: record_account,
    StepKind.API_KEY: api_key,
    StepKind.REPLACE_API_KEY: api_key,
    StepKind.DELETE_API_KEY: delete_api_key,
    StepKind.REGISTER: register,
    StepKind.APPROVE: approve,
    StepKind.DEPOSIT: deposit,
}
