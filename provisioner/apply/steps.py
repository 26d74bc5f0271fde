"""One function per step kind. Each checks the world again right before it acts (check-then-act),
so running a step twice, or after a crash, never repeats a side effect that already happened."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from provisioner import records
from provisioner.apply.context import AccountContext, StepFailed
from provisioner.apply.events import Outcome
from provisioner.apply.transactions import (
    charge,
    explained,
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
    StoredTx,
    key_orphans,
    tx_status,
    unexpected_keys,
)
from provisioner.money import deposit_need, in_flight, to_base_units
from provisioner.plan.model import Step, StepKind
from provisioner.plan.params import (
    UNLIMITED_ALLOWANCE,
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


def _write(ctx: AccountContext, path: str, data: dict[str, str], *, label: str) -> int | None:
    """Write an owned secret, retrying what Vault failed: each try reads again and writes with
    check-and-set against that version, so a write that landed unanswered is seen, not repeated.
    The version written; None when Vault held the same data already."""
    attempt = 1
    while True:
        try:
            return _write_once(ctx, path, data, label)
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


def _write_once(ctx: AccountContext, path: str, data: dict[str, str], label: str) -> int | None:
    current = ctx.conn.vault.read(path)
    if current.entry.is_foreign(ctx.spec.name):
        raise StepFailed(
            f"{path} holds data not written by {MANAGED_BY} for {ctx.spec.name}; left untouched"
        )
    if current.entry.exists and dict(current.data) == data:
        return None
    failpoint(f"before_vault_write:{label}")
    # write_owned sets the ownership metadata first, then the data with check-and-set: a
    # crash in between leaves an empty path of ours, never data without an owner.
    version = ctx.conn.vault.write_owned(
        path,
        data,
        account=ctx.spec.name,
        expected_version=current.entry.version,
        current=current,
    )
    failpoint(f"after_vault_write:{label}")
    ctx.log(f"stored {path}")
    return version


def _stored(path: str, version: int | None) -> str:
    return f"stored at {path} (version {version})" if version else f"already at {path}, unchanged"


def stark_key(ctx: AccountContext, step: Step) -> Outcome:
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
    path = ctx.spec.stark_key_path
    version = _write(ctx, path, _stark_record(ctx, pair, account), label="stark_key")
    found = f", dYdX's position {account.position_id}" if account is not None else ""
    return Outcome(
        version is not None,
        f"derived STARK key {pair.public_key_hex}{found}; {_stored(path, version)}",
    )


def onboard(ctx: AccountContext, step: Step) -> Outcome:
    """POST /v3/onboarding, then the position in the STARK secret. The default API key it
    returns is kept in memory for the steps after it; storing it is the default key's own step
    (it is recovered from the same signature), so each step's writes are the ones it plans."""
    pair = ctx.stark()
    try:
        account, creds = ctx.conn.dydx.onboard(ctx.signer, pair)
    except AlreadyOnboarded:
        ctx.log("already onboarded (dYdX answered 409)")
        account = ctx.conn.dydx.get_account(ctx.spec.address, ctx.credentials())
        _same_stark_key(ctx, pair, account)
        ctx.remember_position(account.position_id)
        onboarded = False
    else:
        failpoint("after_onboard")
        ctx.remember_credentials(creds)
        ctx.log(f"onboarded: position {account.position_id}")
        ctx.remember_position(account.position_id)
        onboarded = True
    path = ctx.spec.stark_key_path
    version = _write(ctx, path, _stark_record(ctx, pair, account), label="stark_account")
    what = "onboarded at dYdX" if onboarded else "already onboarded at dYdX (409)"
    return Outcome(
        onboarded or version is not None,
        f"{what}: position {account.position_id}, {_stored(path, version)}",
    )


def record_account(ctx: AccountContext, step: Step) -> Outcome:
    account = ctx.conn.dydx.get_account(ctx.spec.address, ctx.credentials())
    pair = ctx.stark()
    _same_stark_key(ctx, pair, account)
    ctx.remember_position(account.position_id)
    path = ctx.spec.stark_key_path
    version = _write(ctx, path, _stark_record(ctx, pair, account), label="stark_account")
    return Outcome(version is not None, f"position {account.position_id} {_stored(path, version)}")


def _same_stark_key(ctx: AccountContext, pair: StarkKeyPair, account: OnboardedAccount) -> None:
    if account.stark_key != pair.public_key:
        raise StepFailed(
            f"the STARK key of {ctx.spec.name} ({pair.public_key_hex}) differs from the one dYdX has "
            f"for {ctx.spec.address} ({hex(account.stark_key)}); refusing to record it"
        )


def api_key(ctx: AccountContext, step: Step) -> Outcome:
    params = step.params_as(ApiKeyParams)
    name, path = params.name, params.path
    if params.is_default:  # recovered from the onboarding signature: nothing created at dYdX
        creds = ctx.conn.dydx.recover_default_credentials(ctx.signer)
        version = _write(ctx, path, _api_record(ctx, creds), label="default_api_key")
        return Outcome(
            version is not None,
            f"recovered the default API key {creds.key}; {_stored(path, version)}",
        )
    listed = ctx.conn.dydx.list_api_keys(ctx.spec.address, ctx.credentials())
    stored = ctx.conn.vault.read(path)
    complete = all(stored.data.get(f) for f in API_FIELDS)
    if complete and stored.entry.is_ours(ctx.spec.name) and stored.data[API_KEY] in listed:
        ctx.log(f"API key {name} is already at dYdX and in {path} (found by a fresh check)")
        return Outcome(False, f"API key {name} is already at dYdX and in {path}")
    intent, creds = journaled_create(ctx, name, path, listed, label="api_key")
    try:
        version = _write(ctx, path, _api_record(ctx, creds), label="api_key")
    except Exception as exc:  # noqa: BLE001 - whatever failed, no key may stay without its secret
        raise _unstored_key_deleted(ctx, intent, creds.key, exc) from None
    ctx.journal.forget(ctx.spec.name, intent.key)
    return Outcome(True, f"created API key {name} ({creds.key}) at dYdX; {_stored(path, version)}")


def journaled_create(
    ctx: AccountContext,
    name: str,
    path: str,
    listed: frozenset[str],
    *,
    label: str,
    replaces: str | None = None,
) -> tuple[KeyIntent, ApiCredentials]:
    """POST /v3/api-keys under a journaled intent: the keys listed before, then the new id,
    so a killed run leaves the next one enough to settle. Kill points ``after_intent``,
    ``after_create`` and ``after_intent_update`` with ``label``."""
    intent = KeyIntent(account=ctx.spec.name, name=name, path=path, listed_before=listed)
    ctx.journal.record_key_intent(intent)
    failpoint(f"after_intent:{label}")
    creds = _create_api_key(ctx, intent)
    failpoint(f"after_create:{label}")
    to_replace = f" to replace {replaces}" if replaces else ""
    ctx.log(f"created API key {name} ({creds.key}){to_replace}")
    try:
        intent = ctx.journal.note_created(intent, creds.key)
    except VaultError as exc:  # the intent still names the keys listed before: enough to settle
        ctx.log(f"could not note key {creds.key} in the journal ({exc})")
    failpoint(f"after_intent_update:{label}")
    return intent, creds


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
    """Storing a new key failed: delete it at dYdX rather than leave a live key nobody holds.

    Unless Vault shows it stored after all (a write that landed unanswered), or cannot be
    asked: then it is left to the journal, and the next apply settles it."""
    why = str(cause) if isinstance(cause, StepFailed | VaultError) else type(cause).__name__
    try:
        landed = ctx.conn.vault.read(intent.path).data.get(API_KEY) == key_id
    except VaultError as exc:
        return StepFailed(
            f"storing API key {intent.name} at {intent.path} failed ({why}), and Vault cannot tell "
            f"whether it landed ({exc}); the journal keeps key {key_id}: the next apply settles it"
        )
    if landed:
        with contextlib.suppress(VaultError):
            ctx.journal.forget(ctx.spec.name, intent.key)
        return StepFailed(
            f"storing API key {intent.name} at {intent.path} reported a failure ({why}), but the "
            f"new key {key_id} is stored there; run apply again to finish"
        )
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


def delete_api_key(ctx: AccountContext, step: Step) -> Outcome:
    default_id = ctx.default_key_id()  # derived from the onboarding signature, never read
    key_id = step.params_as(DeleteApiKeyParams).key_id
    if key_id.strip().lower() == default_id.strip().lower():
        raise StepFailed(f"{default_id} is the default API key: never deleted")
    if key_id not in ctx.conn.dydx.list_api_keys(ctx.spec.address, ctx.credentials()):
        ctx.log(f"API key {key_id} is already gone at dYdX")
        return Outcome(False, f"API key {key_id} is already gone at dYdX")
    ctx.conn.dydx.delete_api_key(ctx.signer, key_id, default_key=default_id)
    ctx.log(f"deleted API key {key_id}")
    return Outcome(True, f"deleted API key {key_id} at dYdX")


def register(ctx: AccountContext, step: Step) -> Outcome:
    pair = ctx.stark()
    owner = ctx.conn.chain.read_accounts([(ctx.spec.address, pair.public_key)])[
        ctx.spec.address
    ].stark_key_owner
    if owner is not None:
        if owner.lower() != ctx.spec.address.lower():
            raise StepFailed(f"STARK key is registered on L1 to {owner}")
        return Outcome(False, f"the STARK key is already registered on L1 to {owner}")
    signature = ctx.conn.dydx.registration_signature(ctx.spec.address, ctx.credentials())
    check = explained(ctx, guard_sender(ctx))
    address = ctx.spec.address
    tx = ctx.conn.chain.build_register(address, address, pair.public_key, signature, nonces=check)
    tx_hash = send(ctx, "register", tx, amount=0)
    return Outcome(True, f"sent registerUser for the STARK key ({tx_hash})")


@dataclass(frozen=True)
class _Remaining:
    """The deposit still to make, from the journal and fresh chain events."""

    target: int
    deposited: int
    pending: int
    stark_key: int
    position_id: int
    guarded: list[StoredTx]  # the sender's journal, as ``guard_sender`` read it

    @property
    def need(self) -> int:
        return deposit_need(self.target, self.deposited, self.pending)

    @property
    def there(self) -> str:
        """What is there already, in the words the log uses: "3 of 4.5", "3 (+1 pending) of 4.5"."""
        pending = f" (+{usdc(self.pending)} pending)" if self.pending else ""
        return f"{usdc(self.deposited)}{pending} of {usdc(self.target)}"


def _remaining(ctx: AccountContext) -> _Remaining:
    """Toward the manifest's target (never a plan file's), read from the journal, then fresh
    chain events (in that order: a deposit mined and forgotten in between is then in the
    events). The sender is guarded on the way (``guard_sender``; its build checks the nonces)."""
    target = to_base_units(ctx.spec.deposit)
    pair = ctx.stark()
    position_id = ctx.position_id()
    guarded = guard_sender(ctx)
    pending = in_flight(
        (tx.intent, tx.amount, tx_status(ctx.conn.chain, tx, ctx.confirmations))
        for tx in guarded
        if tx.intent == "deposit"  # only their status is asked of the node
    )
    confirmed, unconfirmed = ctx.conn.chain.deposit_totals(refresh=True)
    position = (pair.public_key, position_id)
    deposited = confirmed.get(position, 0) + unconfirmed.get(position, 0)
    return _Remaining(target, deposited, pending, pair.public_key, position_id, guarded)


def approve(ctx: AccountContext, step: Step) -> Outcome:
    """Allow what the remaining deposit needs, recomputed now: nothing when nothing is to
    deposit, and never more than the plan showed."""
    params = step.params_as(ApproveParams)
    planned = amount = need = params.amount_base_units
    guarded: list[StoredTx] | None = None  # the journal ``_remaining`` read, if it ran
    if params.target_base_units is not None:
        remaining = _remaining(ctx)
        guarded = remaining.guarded
        need = remaining.need
        if not need:
            return Outcome(
                False, f"{remaining.there} USDC already deposited: no allowance needed, none sent"
            )
        if (
            planned != UNLIMITED_ALLOWANCE
        ):  # ``allowance: max`` asks for the maximum whatever the need
            if need > planned:
                raise StepFailed(
                    f"the deposit needed now ({usdc(need)} USDC) is more than the allowance the "
                    f"plan showed ({usdc(planned)} USDC); nothing was sent: run plan again"
                )
            amount = need
    wallet = ctx.conn.chain.read_accounts([(ctx.spec.address, None)])[ctx.spec.address]
    current = wallet.usdc_allowance
    if current >= need:
        return Outcome(
            False, f"the allowance of {usdc(current)} USDC covers the {usdc(need)} USDC deposit"
        )
    if need != UNLIMITED_ALLOWANCE:  # (an older plan's unlimited allowance names no deposit)
        _deposit_can_follow(ctx, need, wallet.usdc_balance)
    if guarded is None:
        guarded = guard_sender(ctx)
    # the node's nonces are asked in the build's batch: after the refresh, before a nonce is used
    built = ctx.conn.chain.build_approve(ctx.spec.address, amount, nonces=explained(ctx, guarded))
    send(ctx, "approve", built, amount=amount)
    shown = "an unlimited allowance" if amount == UNLIMITED_ALLOWANCE else f"{usdc(amount)} USDC"
    return Outcome(
        True,
        f"sent approve of {shown} for the exchange (the deposit needs {usdc(need)}; allowance was {usdc(current)})",
    )


def _deposit_can_follow(ctx: AccountContext, need: int, balance: int) -> None:
    """No allowance for a deposit that cannot follow it: the wallet must hold the USDC, and
    the run's ceilings must have room for it now (the deposit is charged when it is sent)."""
    if balance < need:
        raise StepFailed(
            f"the wallet holds {usdc(balance)} USDC, the deposit needs {usdc(need)} USDC; "
            "no allowance was sent"
        )
    refused = ctx.budget.refusal(need, f"the deposit of {ctx.spec.name}")
    if refused is not None:
        raise StepFailed(f"{refused}; no allowance was sent either")


def deposit(ctx: AccountContext, step: Step) -> Outcome:
    """Top up to the manifest's target, recomputed from the journal, then fresh chain events.
    Never more than the plan showed, never past the run's ceiling: never pay twice. Simulated
    on the pending state, right behind this account's register and approve; a deposit that
    cannot happen after this run approved it leaves no allowance standing."""
    planned = step.params_as(DepositParams).amount_base_units
    with revoke_on_failure(ctx, "the deposit"):  # its guard too: it follows this run's approve
        remaining = _remaining(ctx)
    need = remaining.need
    if not need:
        ctx.log("deposit already covered")
        return Outcome(False, f"{remaining.there} USDC already deposited")
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
        check = explained(ctx, remaining.guarded)  # in the build's batch, after the refresh
        tx = ctx.conn.chain.build_deposit(
            ctx.spec.address, remaining.stark_key, remaining.position_id, need, nonces=check
        )
        charge(ctx, need, f"the deposit of {ctx.spec.name}")
    send(ctx, "deposit", tx, amount=need)
    # sent, not yet final: the account's end awaits it (and says so if it reverts)
    return Outcome(True, f"sent a deposit of {usdc(need)} USDC ({remaining.there} already there)")


def settle_journal(ctx: AccountContext) -> None:
    """Finish what a killed run left, before any step: orphaned API keys are deleted at dYdX
    (only those whose id the journal recorded); journaled transactions are settled
    (apply/transactions.py)."""
    for intent in ctx.journal.key_intents(ctx.spec.name):
        _delete_orphans(ctx, intent)
        ctx.journal.forget(ctx.spec.name, intent.key)
    settle_transactions(ctx)


RUNNERS: dict[StepKind, Callable[[AccountContext, Step], Outcome]] = {
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
