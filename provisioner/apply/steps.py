"""One function per step kind. Each checks the world again right before it acts (check-then-act),
so running a step twice, or after a crash, never repeats a side effect that already happened."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from provisioner import records
from provisioner.apply.context import AccountContext, StepFailed
from provisioner.apply.transactions import (
    charge,
    guard_sender,
    revoke_on_failure,
    send,
    settle_transactions,
    usdc,
)
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
    KeyIntent,
    key_orphans,
    tx_status,
    unexpected_keys,
)
from provisioner.money import deposit_need, in_flight, to_base_units
from provisioner.plan.model import Step, StepKind
from provisioner.plan.params import (
    ApiKeyParams,
    ApproveParams,
    DeleteApiKeyParams,
    DepositParams,
    StarkKeyParams,
)
from provisioner.records import API_FIELDS, API_KEY, MANAGED_BY

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
        ctx.remember_position(account.position_id)
    _write(ctx, ctx.spec.stark_key_path, _stark_record(ctx, pair, account), label="stark_key")


def onboard(ctx: AccountContext, step: Step) -> None:
    pair = ctx.stark()
    try:
        account, creds = ctx.conn.dydx.onboard(ctx.signer, pair)
    except AlreadyOnboarded:
        ctx.log("already onboarded (dYdX answered 409)")
        account = ctx.conn.dydx.get_account(ctx.spec.address, ctx.credentials())
        _same_stark_key(ctx, pair, account)
        ctx.remember_position(account.position_id)
    else:
        failpoint("after_onboard")
        ctx.remember_credentials(creds)
        ctx.log(f"onboarded: position {account.position_id}")
        ctx.remember_position(account.position_id)
        default = next((k for k in ctx.spec.api_keys if k.is_default), None)
        if default is not None:  # the default key comes with onboarding: keep it right away
            _write(ctx, default.secret_path, _api_record(ctx, creds), label="default_api_key")
    _write(ctx, ctx.spec.stark_key_path, _stark_record(ctx, pair, account), label="stark_account")


def record_account(ctx: AccountContext, step: Step) -> None:
    account = ctx.conn.dydx.get_account(ctx.spec.address, ctx.credentials())
    pair = ctx.stark()
    _same_stark_key(ctx, pair, account)
    ctx.remember_position(account.position_id)
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
    guard_sender(ctx)
    tx = ctx.conn.chain.build_register(
        ctx.spec.address, ctx.spec.address, pair.public_key, signature
    )
    send(ctx, "register", tx, amount=0)


def approve(ctx: AccountContext, step: Step) -> None:
    amount = step.params_as(ApproveParams).amount_base_units
    current = ctx.conn.chain.read_accounts([(ctx.spec.address, None)])[
        ctx.spec.address
    ].usdc_allowance
    if current >= amount:
        return
    guard_sender(ctx)
    send(ctx, "approve", ctx.conn.chain.build_approve(ctx.spec.address, amount), amount=amount)


def deposit(ctx: AccountContext, step: Step) -> None:
    """Top up to the manifest's target, recomputed from the journal, then fresh chain events
    (in that order: a deposit mined and forgotten in between is then in the events). Never
    more than the plan showed, never past the run's ceiling: never pay twice. Simulated on the
    pending state, right behind this account's register and approve; a deposit that cannot
    happen after this run approved it leaves no allowance standing (apply/transactions.py)."""
    planned = step.params_as(DepositParams).amount_base_units
    target = to_base_units(ctx.spec.deposit)  # the manifest's, never a plan file's
    pair = ctx.stark()
    position_id = ctx.position_id()
    pending = in_flight(
        (tx.intent, tx.amount, tx_status(ctx.conn.chain, tx, ctx.confirmations))
        for tx in guard_sender(ctx)
        if tx.intent == "deposit"  # only their status is asked of the node
    )
    confirmed, unconfirmed = ctx.conn.chain.deposit_totals(refresh=True)
    position = (pair.public_key, position_id)
    deposited = confirmed.get(position, 0) + unconfirmed.get(position, 0)
    need = deposit_need(target, deposited, pending)
    if not need:
        ctx.log("deposit already covered")
        return
    with revoke_on_failure(ctx, f"the deposit of {usdc(need)} USDC"):
        if need > planned:
            raise StepFailed(
                f"the deposit needed now ({usdc(need)} USDC) is more than the plan showed "
                f"({usdc(planned)} USDC); nothing was sent: run plan again"
            )
        if need != planned:
            ctx.log(
                f"deposit amount recomputed from fresh facts: {usdc(need)} USDC (planned {usdc(planned)} USDC)"
            )
        tx = ctx.conn.chain.build_deposit(ctx.spec.address, pair.public_key, position_id, need)
        charge(ctx, need, f"the deposit of {ctx.spec.name}")
    send(ctx, "deposit", tx, amount=need)


def settle_journal(ctx: AccountContext) -> None:
    """Finish what a killed run left, before any step: orphaned API keys are deleted at dYdX
    (only those whose id the journal recorded); journaled transactions are settled
    (apply/transactions.py)."""
    for intent in ctx.journal.key_intents(ctx.spec.name):
        _delete_orphans(ctx, intent)
        ctx.journal.forget(ctx.spec.name, intent.key)
    settle_transactions(ctx)


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
