"""One function per step kind. Each checks the world again right before it acts (check-then-act),
so running a step twice, or after a crash, never repeats a side effect that already happened."""

from __future__ import annotations

from collections.abc import Callable

from provisioner.apply.context import AccountContext, StepFailed
from provisioner.clients.dydx import ApiCredentials, OnboardedAccount, StarkKeyPair
from provisioner.facts import MANAGED_BY
from provisioner.journal import StoredTx, tx_status
from provisioner.plan.model import Step, StepKind

NETWORK_LABEL = "network"


def _stark_record(
    ctx: AccountContext, pair: StarkKeyPair, account: OnboardedAccount | None
) -> dict[str, str]:
    data = {
        "private_key": hex(pair.private_key),
        "public_key": hex(pair.public_key),
        "public_key_y_coordinate": hex(pair.public_key_y),
        "ethereum_address": ctx.spec.address,
        NETWORK_LABEL: ctx.conn.manifest.network.name,
    }
    if account is not None:
        data["position_id"] = str(account.position_id)
        data["account_id"] = account.account_id
    return data


def _api_record(ctx: AccountContext, creds: ApiCredentials) -> dict[str, str]:
    return {
        "key": creds.key,
        "secret": creds.secret,
        "passphrase": creds.passphrase,
        "ethereum_address": ctx.spec.address,
        NETWORK_LABEL: ctx.conn.manifest.network.name,
    }


def _write(ctx: AccountContext, path: str, data: dict[str, str]) -> None:
    """Write an owned secret with check-and-set against the version we read just now."""
    current = ctx.conn.vault.read(path)
    if current.entry.is_foreign(ctx.spec.name):
        raise StepFailed(
            f"{path} holds data not written by {MANAGED_BY} for {ctx.spec.name}; left untouched"
        )
    if current.entry.exists and dict(current.data) == data:
        return
    ctx.conn.vault.write_owned(path, data, account=ctx.spec.name, expected_version=current.entry.version, current=current.entry)
    ctx.log(f"stored {path}")


def stark_key(ctx: AccountContext, step: Step) -> None:
    pair = ctx.conn.dydx.derive_stark_key(ctx.signer, check_deterministic=True)
    ctx.remember_stark(pair)
    account = None
    if ctx.conn.dydx.user_exists(ctx.spec.address):
        account = ctx.conn.dydx.get_account(ctx.spec.address, ctx.credentials())
        if account.stark_key != pair.public_key:
            raise StepFailed(
                f"the STARK key derived now differs from the one dYdX has for {ctx.spec.address}; refusing to store it"
            )
    _write(ctx, ctx.spec.stark_key_path, _stark_record(ctx, pair, account))


def onboard(ctx: AccountContext, step: Step) -> None:
    pair = ctx.stark()
    if ctx.conn.dydx.user_exists(ctx.spec.address):
        ctx.log("already onboarded (found by a fresh check)")
        account = ctx.conn.dydx.get_account(ctx.spec.address, ctx.credentials())
    else:
        account, creds = ctx.conn.dydx.onboard(ctx.signer, pair)
        ctx.remember_credentials(creds)
        ctx.log(f"onboarded: position {account.position_id}")
        default = next((k for k in ctx.spec.api_keys if k.is_default), None)
        if default is not None:  # the default key comes with onboarding: keep it right away
            _write(ctx, default.secret_path, _api_record(ctx, creds))
    _write(ctx, ctx.spec.stark_key_path, _stark_record(ctx, pair, account))


def record_account(ctx: AccountContext, step: Step) -> None:
    account = ctx.conn.dydx.get_account(ctx.spec.address, ctx.credentials())
    _write(ctx, ctx.spec.stark_key_path, _stark_record(ctx, ctx.stark(), account))


def api_key(ctx: AccountContext, step: Step) -> None:
    name = step.params["name"]
    path = step.params["path"]
    if name == "default":
        creds = ctx.conn.dydx.recover_default_credentials(ctx.signer)
    else:
        creds = ctx.conn.dydx.create_api_key(ctx.signer)
        ctx.log(f"created API key {name} ({creds.key})")
    _write(ctx, path, _api_record(ctx, creds))


def delete_api_key(ctx: AccountContext, step: Step) -> None:
    default = next((k for k in ctx.spec.api_keys if k.is_default), None)
    if default is None:
        raise StepFailed("the manifest names no default API key; refusing to delete keys")
    default_id = ctx.conn.vault.read(default.secret_path).data.get("key", "")
    ctx.conn.dydx.delete_api_key(ctx.signer, step.params["key"], default_key=default_id)
    ctx.log(f"deleted API key {step.params['key']}")


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
    tx = ctx.conn.chain.build_register(
        ctx.spec.address, ctx.spec.address, pair.public_key, signature
    )
    _send(ctx, "register", tx, amount=0)


def approve(ctx: AccountContext, step: Step) -> None:
    amount = int(step.params["amount"])
    current = ctx.conn.chain.read_accounts([(ctx.spec.address, None)])[
        ctx.spec.address
    ].usdc_allowance
    if current >= amount:
        return
    _send(ctx, "approve", ctx.conn.chain.build_approve(ctx.spec.address, amount), amount=amount)


def deposit(ctx: AccountContext, step: Step) -> None:
    """Top up to the target, recomputed from fresh chain events and the journal: never pay twice."""
    target = int(step.params["target"])
    pair = ctx.stark()
    account = ctx.conn.dydx.get_account(ctx.spec.address, ctx.credentials())
    deposited = ctx.conn.chain.deposits(refresh=True).get((pair.public_key, account.position_id), 0)
    pending = sum(
        tx.amount
        for tx in ctx.journal.entries(ctx.spec.name)
        if tx.intent == "deposit"
        and tx_status(ctx.conn.chain, tx.tx_hash) in ("pending", "dropped")
    )
    need = target - deposited - pending
    if need <= 0:
        ctx.log("deposit already covered")
        return
    if need != int(step.params["amount"]):
        ctx.log(f"deposit amount recomputed from fresh facts: {need} base units")
    tx = ctx.conn.chain.build_deposit(ctx.spec.address, pair.public_key, account.position_id, need)
    _send(ctx, "deposit", tx, amount=need)


def _send(ctx: AccountContext, intent: str, tx: dict[str, object], *, amount: int) -> None:
    """Sign, journal, broadcast, wait. The journal entry is written before the broadcast."""
    signer = ctx.signer
    nonce = int(str(tx["nonce"]))
    try:
        if signer.can_sign_raw_transactions:
            raw = signer.sign_transaction(tx)
            tx_hash = ctx.conn.chain.hash_of_raw(raw)
            ctx.journal.record(StoredTx(ctx.spec.name, intent, nonce, tx_hash, "0x" + raw.hex(), amount))
            ctx.conn.chain.send_raw(raw)
        else:
            tx_hash = signer.send_transaction(tx)
            ctx.journal.record(StoredTx(ctx.spec.name, intent, nonce, tx_hash, "", amount))
    except Exception:
        # The nonce handed out for this transaction may be unused now: re-read it from the
        # node so the next transaction does not leave a gap and get stuck.
        ctx.conn.chain.nonces.resync(ctx.spec.address)
        raise
    ctx.log(f"{intent} sent: {tx_hash}")
    ctx.tx_hashes.append(tx_hash)
    ctx.conn.chain.wait_for_receipt(tx_hash, ctx.receipt_timeout)
    ctx.journal.forget(ctx.spec.name, f"{intent}-{nonce}")
    ctx.log(f"{intent} mined: {tx_hash}")


def settle_journal(ctx: AccountContext) -> None:
    """Finish what a crashed run left: rebroadcast dropped signed transactions, wait, clean up."""
    for tx in ctx.journal.entries(ctx.spec.name):
        status = tx_status(ctx.conn.chain, tx.tx_hash)
        if status == "dropped" and tx.raw_tx:
            ctx.log(f"rebroadcasting journaled {tx.intent} {tx.tx_hash}")
            try:
                ctx.conn.chain.send_raw(bytes.fromhex(tx.raw_tx[2:]))
                status = "pending"
            except Exception as exc:  # noqa: BLE001 - the nonce was used by something else: the tx can never land
                ctx.log(
                    f"journaled {tx.intent} {tx.tx_hash} cannot be rebroadcast ({exc}); dropping the entry"
                )
        if status == "pending":
            ctx.conn.chain.wait_for_receipt(tx.tx_hash, ctx.receipt_timeout)
        ctx.journal.forget(ctx.spec.name, tx.key)


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
