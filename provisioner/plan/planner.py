"""The planner: a pure function from (desired state, observed facts) to ordered steps. No I/O.

Each step says what it does, why (the fact that differs), what it waits for and,
if it cannot run, why it is blocked. A step whose dependency is blocked is
blocked too. Deposits only ever top up: a target below what was deposited is a
note, never a withdrawal. Nothing is destroyed unless ``prune_api_keys`` is set,
and the default API key is never deleted.

Each step's condition reads what the builder decided before it (the STARK key ready, the
steps a later one waits for, the derived default key's id). Beside it: plan/adoption.py (a
STARK key derived while observing), plan/journal_notes.py, plan/rotation.py.
"""

from __future__ import annotations

from provisioner.facts import AccountFacts, VaultEntry, WorldFacts
from provisioner.manifest.model import AccountSpec, ApiKeySpec, Manifest
from provisioner.money import deposit_need, format_usdc, from_base_units, to_base_units
from provisioner.plan.adoption import KNOWN_ONCE, dydx_key_conflict, unknown_why
from provisioner.plan.fingerprint import fingerprint
from provisioner.plan.journal_notes import interrupted_key_creations, journaled_transactions
from provisioner.plan.model import (
    AccountPlan,
    Action,
    Note,
    Plan,
    PlanOptions,
    Step,
    StepKind,
    propagate_blocks,
)
from provisioner.plan.params import (
    UNLIMITED_ALLOWANCE,
    ApiKeyParams,
    ApproveParams,
    DeleteApiKeyParams,
    DepositParams,
    DydxUser,
    OnboardParams,
    RecordAccountParams,
    RegisterParams,
    StarkKeyParams,
    StepParams,
)
from provisioner.plan.rotation import key_ages, plan_rotations, selected
from provisioner.records import API_FIELDS, API_KEY, ETHEREUM_ADDRESS, POSITION_ID, STARK_FIELDS

_DYDX_USER: dict[bool | None, DydxUser] = {True: "exists", False: "absent", None: "unknown"}
_CREATE_KEY_NEEDS = "creating an API key is signed with the Ethereum key (POST /v3/api-keys)"


__all__ = ["PlanOptions", "make_plan", "plan_account"]
_DEFAULT_OPTIONS = PlanOptions()


def make_plan(
    manifest: Manifest,
    facts: WorldFacts,
    options: PlanOptions = _DEFAULT_OPTIONS,
    created_at: str = "",
) -> Plan:
    accounts = []
    for spec in manifest.accounts:
        try:
            acc_facts = facts.account(spec.name)
        except KeyError:
            continue  # not selected (--target / --shard)
        accounts.append(plan_account(spec, acc_facts, options))
    return Plan(
        manifest=manifest.path,
        network=manifest.network.name,
        chain_id=manifest.network.chain_id,
        fingerprint=fingerprint(facts),
        accounts=tuple(accounts),
        created_at=created_at,
        not_checked=facts.not_checked,
        options=options,
        observed_at=next((a.observed_at for a in facts.accounts if a.observed_at), None),
    )


def plan_account(
    spec: AccountSpec, facts: AccountFacts, options: PlanOptions = _DEFAULT_OPTIONS
) -> AccountPlan:
    b = _AccountPlanBuilder(spec, facts)
    b.stark_key()
    b.onboarding()
    # The chain steps before the API keys: under v3's limits an account's eleventh write
    # waits a minute, and nothing else should wait behind it.
    b.registration()
    b.deposit()
    forced = options.rotate[1] if options.rotate and options.rotate[0] == spec.name else None
    b.api_keys(options.prune_api_keys, frozenset({forced} if forced else ()))
    b.notes.extend(journaled_transactions(facts, spec.name))
    steps = selected(b.steps, options.rotate, forced, only_rotations=options.rotation_only)
    return AccountPlan(
        name=spec.name,
        address=spec.address,
        steps=propagate_blocks(steps),
        notes=tuple(b.notes),
        api_keys=key_ages(spec, facts),
    )


class _AccountPlanBuilder:
    def __init__(self, spec: AccountSpec, facts: AccountFacts) -> None:
        self.spec = spec
        self.facts = facts
        self.steps: list[Step] = []
        self.notes: list[Note] = []
        self.stark_ready = False  # Vault holds a complete STARK key pair of ours
        self.stark_step: str | None = None
        self.onboard_step: str | None = None

    # -- helpers -----------------------------------------------------------------------
    def needs_signer(self, why: str) -> str | None:
        """The block for a step that signs with the Ethereum key; ``why`` says what needs it."""
        if self.spec.signer is None:
            return f"no signer (import-only account): {why}"
        if self.facts.signer_error:
            return f"the signer cannot be used for {self.spec.address}: {self.facts.signer_error}"
        return None

    def import_hint(self) -> str:
        return f"provision import --account {self.spec.name} --local-storage EXPORT.json"

    def add(
        self,
        kind: StepKind,
        action: Action,
        summary: str,
        reason: str,
        *,
        suffix: str = "",
        params: StepParams,
        depends: tuple[str | None, ...] = (),
        blocked: str | None = None,
    ) -> str:
        step_id = f"{self.spec.name}/{kind.value}" + (f"/{suffix}" if suffix else "")
        self.steps.append(
            Step(
                id=step_id,
                account=self.spec.name,
                kind=kind,
                action=action,
                summary=summary,
                reason=reason,
                depends_on=tuple(d for d in depends if d),
                blocked=blocked,
                params=params,
            )
        )
        return step_id

    def foreign(self, entry: VaultEntry) -> str:
        owner = (
            f"managed by {entry.managed_by!r} for {entry.account!r}"
            if entry.managed_by
            else "not written by dydx-provisioner"
        )
        return f"conflict: {entry.path} already holds data {owner}; left untouched (move it away or change the destination)"

    # -- steps -------------------------------------------------------------------------
    def stark_key(self) -> None:
        entry = self.facts.stark_secret
        if entry.is_foreign(self.spec.name):
            self.stark_step = self.add(
                StepKind.STARK_KEY,
                Action.CREATE,
                f"store the STARK key at {entry.path}",
                "destination holds foreign data",
                blocked=self.foreign(entry),
                params=StarkKeyParams(path=entry.path),
            )
            return
        if entry.exists and entry.fields >= STARK_FIELDS:
            stored_for = entry.get(ETHEREUM_ADDRESS) or ""
            if stored_for.lower() != self.spec.address.lower():
                self.stark_step = self.add(
                    StepKind.STARK_KEY,
                    Action.UPDATE,
                    f"store the STARK key at {entry.path}",
                    "stored key belongs to another address",
                    blocked=f"conflict: {entry.path} holds a STARK key for {stored_for}, not {self.spec.address}",
                    params=StarkKeyParams(path=entry.path),
                )
                return
            self.stark_ready = True
            return
        action = Action.UPDATE if entry.exists else Action.CREATE
        reason = "STARK key incomplete in Vault" if entry.exists else "no STARK key in Vault"
        conflict = dydx_key_conflict(self.spec, self.facts, self.import_hint())
        if conflict is not None:
            self.stark_step = self.add(
                StepKind.STARK_KEY,
                action,
                f"store the STARK key at {entry.path}",
                "the key derived from the signer is not dYdX's",
                blocked=conflict,
                params=StarkKeyParams(path=entry.path),
            )
            return
        if self.facts.derived_stark_key is not None:
            reason += "; derived in memory for this plan, the same key dYdX has"
        self.stark_step = self.add(
            StepKind.STARK_KEY,
            action,
            f'derive the STARK key ("dYdX STARK Key" signature) and store it at {entry.path}',
            reason,
            blocked=self.needs_signer(
                "the STARK key is derived from an Ethereum signature; import the key pair "
                f"from the web app instead: {self.import_hint()}"
            ),
            params=StarkKeyParams(
                path=entry.path,
                version=entry.version,
                dydx_user=_DYDX_USER[self.facts.user_exists],
            ),
        )

    def onboarding(self) -> None:
        exists = self.facts.user_exists
        path = self.facts.stark_secret.path
        if exists is False:
            self.onboard_step = self.add(
                StepKind.ONBOARD,
                Action.CREATE,
                f"onboard {self.spec.address} at dYdX (POST /v3/onboarding)",
                "dYdX knows no user for this address",
                depends=(self.stark_step,),
                blocked=self.needs_signer(
                    "onboarding is signed with the Ethereum key; onboard in the dYdX web app, "
                    f"then {self.import_hint()}"
                ),
                params=OnboardParams(),
            )
        elif exists is None:
            self.notes.append(
                Note(
                    "warning",
                    "could not tell whether dYdX knows this user; onboarding status unknown",
                )
            )
        elif self.stark_ready and self.facts.stark_secret.get(POSITION_ID) is None:
            self.add(
                StepKind.RECORD_ACCOUNT,
                Action.UPDATE,
                f"record the account and position id in {path}",
                "STARK secret lacks position_id",
                depends=(self.stark_step,),
                params=RecordAccountParams(path=path, version=self.facts.stark_secret.version),
            )

    def api_keys(self, prune: bool, rotate_now: frozenset[str] = frozenset()) -> None:
        listed = self.facts.dydx_api_keys
        stored_ids: set[str] = set()
        # The default key's id comes from the onboarding signature, never from what its
        # destination holds: a destination holding another key is drift, repaired by storing it.
        default_id = self.facts.default_key_id
        for key in self.spec.api_keys:
            entry = self.facts.api_secret(key.name) or VaultEntry(
                path=key.secret_path, exists=False
            )
            key_id = entry.get(API_KEY) if entry.exists else None
            if key.is_default and default_id and key_id and key_id != default_id:
                self._wrong_default(key, entry, key_id, default_id)
                stored_ids.add(default_id)
                continue
            if key_id:
                stored_ids.add(key_id)
            self._api_key(key, entry, key_id, listed)
        if default_id:
            stored_ids.add(default_id)  # whatever Vault holds, never an extra to prune
        orphans = interrupted_key_creations(self.facts, self.notes)
        replaced = plan_rotations(self, rotate_now)  # live until their overlap ends
        if listed is None:
            return
        extra = sorted(listed - stored_ids - orphans - replaced)
        if not extra:
            return
        if not prune:
            self.notes.append(
                Note(
                    "info",
                    f"{len(extra)} API key(s) at dYdX are not in the manifest: left in place (apply --prune-api-keys deletes them; never the default key): {', '.join(extra)}",
                )
            )
            return
        for key_id in extra:
            blocked = self.needs_signer("deleting an API key is signed with the Ethereum key")
            if default_id is None:
                blocked = (
                    blocked
                    or "the default API key's id is not known (it is derived from the onboarding signature; from a remote signer only with --derive), so it cannot be told apart and protected"
                )
            self.add(
                StepKind.DELETE_API_KEY,
                Action.DELETE,
                f"delete API key {key_id} at dYdX",
                "not named in the manifest (--prune-api-keys)",
                suffix=key_id,
                depends=(self.onboard_step,),
                blocked=blocked,
                params=DeleteApiKeyParams(key_id=key_id),
            )

    def _wrong_default(self, key: ApiKeySpec, entry: VaultEntry, held: str, derived: str) -> None:
        self.notes.append(
            Note(
                "drift",
                f"the default API key's destination {key.secret_path} holds key {held}, not the default key {derived}",
            )
        )
        self.add(
            StepKind.API_KEY,
            Action.UPDATE,
            f"store the default API key {derived} (from the onboarding signature) at {key.secret_path}",
            f"{key.secret_path} holds key {held}, not the default key {derived}",
            suffix=key.name,
            depends=(self.onboard_step,),
            blocked=self.needs_signer(
                "the default API key is recovered from an Ethereum signature; import it "
                f"from the web app instead: {self.import_hint()}"
            ),
            params=ApiKeyParams(path=key.secret_path, name=key.name, version=entry.version),
        )

    def _api_key(
        self, key: ApiKeySpec, entry: VaultEntry, key_id: str | None, listed: frozenset[str] | None
    ) -> None:
        path = key.secret_path
        if entry.is_foreign(self.spec.name):
            self.add(
                StepKind.API_KEY,
                Action.CREATE,
                f"store API key {key.name} at {path}",
                "destination holds foreign data",
                suffix=key.name,
                blocked=self.foreign(entry),
                params=ApiKeyParams(path=path, name=key.name),
            )
            return
        if not entry.exists or not entry.fields >= API_FIELDS:
            action = Action.UPDATE if entry.exists else Action.CREATE
            if key.is_default:
                summary = f"recover the default API key (from the onboarding signature) and store it at {path}"
                needs = (
                    "the default API key is recovered from an Ethereum signature; import it "
                    f"from the web app instead: {self.import_hint()}"
                )
            else:
                summary = f"create API key {key.name} at dYdX and store it at {path}"
                needs = _CREATE_KEY_NEEDS
            self.add(
                StepKind.API_KEY,
                action,
                summary,
                "no API key credentials in Vault"
                if not entry.exists
                else "API key credentials incomplete in Vault",
                suffix=key.name,
                depends=(self.onboard_step,),
                blocked=self.needs_signer(needs),
                params=ApiKeyParams(path=path, name=key.name, version=entry.version),
            )
            return
        if listed is not None and key_id not in listed:
            if key.is_default:
                self.notes.append(
                    Note(
                        "drift", f"the default API key stored at {path} is no longer listed by dYdX"
                    )
                )
                self.add(
                    StepKind.REPLACE_API_KEY,
                    Action.UPDATE,
                    f"replace the default API key stored at {path}",
                    "deleted at dYdX behind our back",
                    suffix=key.name,
                    blocked="a deleted default API key cannot be recreated (dYdX derives it from the onboarding signature); remove it from the manifest or use a named key",
                    params=ApiKeyParams(path=path, name=key.name),
                )
                return
            self.notes.append(
                Note(
                    "drift",
                    f"API key {key.name} ({key_id}) stored at {path} is no longer listed by dYdX",
                )
            )
            self.add(
                StepKind.REPLACE_API_KEY,
                Action.UPDATE,
                f"create a new API key {key.name} at dYdX and update {path}",
                f"key {key_id} was deleted at dYdX behind our back",
                suffix=key.name,
                depends=(self.onboard_step,),
                blocked=self.needs_signer(_CREATE_KEY_NEEDS),
                params=ApiKeyParams(path=path, name=key.name, version=entry.version),
            )

    def unknown_why(self) -> str:
        return unknown_why(self.spec, self.facts, self.import_hint())

    def registration(self) -> None:
        owner = self.facts.stark_key_owner
        derived = self.facts.derived_stark_key
        if (self.stark_ready or derived is not None) and owner is not None:
            if owner.lower() != self.spec.address.lower():
                where = (
                    f"in {self.facts.stark_secret.path}"
                    if self.stark_ready
                    else "derived from the signer"
                )
                self.add(
                    StepKind.REGISTER,
                    Action.CREATE,
                    "register the STARK key on L1",
                    "registered to another address",
                    blocked=f"conflict: the STARK key {where} is registered on L1 to {owner}, not {self.spec.address}",
                    params=RegisterParams(),
                )
            return
        unknown = not self.stark_ready and derived is None and self.facts.stark_key_unknown
        self.add(
            StepKind.REGISTER,
            Action.CREATE,
            f"register the STARK key on L1 unless it is already: {KNOWN_ONCE}"
            if unknown
            else "register the STARK key on L1 (GET /v3/registration, then registerUser)",
            self.unknown_why() if unknown else "getEthKey(starkKey) is not this address",
            depends=(self.stark_step, self.onboard_step),
            blocked=self.needs_signer(
                "registration needs an Ethereum signer (registerUser is sent from the wallet); "
                "configure one, or register from the web app"
            )
            or self._gas_block(),
            params=RegisterParams(),
        )

    def _gas_block(self) -> str | None:
        if self.facts.eth_balance_wei == 0:
            return f"no ETH at {self.spec.address} to pay for gas"
        return None

    def deposit(self) -> None:
        target = to_base_units(self.spec.deposit)
        waiting = self.facts.pending_deposits + self.facts.unconfirmed_deposits
        have = self.facts.deposited + waiting
        need = deposit_need(target, self.facts.deposited, waiting)
        if target < have:
            self.notes.append(
                Note(
                    "info",
                    f"manifest asks for {format_usdc(self.spec.deposit)} USDC, {format_usdc(from_base_units(have))} already deposited: nothing to do (withdrawals are never made)",
                )
            )
        if not need:
            return
        unknown = self.facts.stark_key_unknown
        need_text = format_usdc(from_base_units(need))
        blocked = self.needs_signer(
            "a deposit needs an Ethereum signer (approve and deposit are sent from the wallet); "
            "configure one, or deposit from the web app"
        )
        blocked = blocked or self._gas_block()
        if blocked is None and self.facts.usdc_balance < need:
            blocked = f"wallet holds {format_usdc(from_base_units(self.facts.usdc_balance))} USDC, the deposit needs {need_text}"
        register_id = next((s.id for s in self.steps if s.kind is StepKind.REGISTER), None)
        approve_id = None
        if self.facts.usdc_allowance < need:
            amount = UNLIMITED_ALLOWANCE if self.spec.allowance == "max" else need
            shown = "unlimited" if self.spec.allowance == "max" else f"{need_text} USDC"
            approve_id = self.add(
                StepKind.APPROVE,
                Action.UPDATE,
                f"approve {'up to ' if unknown and self.spec.allowance != 'max' else ''}{shown} "
                "for the exchange" + (f": {KNOWN_ONCE}" if unknown else ""),
                f"allowance {format_usdc(from_base_units(self.facts.usdc_allowance))} USDC < {need_text} USDC"
                + (f" (the deposit at most: {self.unknown_why()})" if unknown else ""),
                # no allowance for a deposit that cannot happen: wait for what the deposit waits for
                depends=(self.onboard_step, register_id),
                blocked=blocked,
                params=ApproveParams(amount_base_units=amount, target_base_units=target),
            )
        waiting = self.facts.pending_deposits + self.facts.unconfirmed_deposits
        pending = f" (+{format_usdc(from_base_units(waiting))} pending)" if waiting else ""
        self.add(
            StepKind.DEPOSIT,
            Action.CREATE,
            f"deposit up to {need_text} USDC: {KNOWN_ONCE}"
            if unknown
            else f"deposit {need_text} USDC",
            # the worst case (nothing deposited yet) is what the deposit ceilings are held to
            f"deposits not known, counted as {need_text} of {format_usdc(self.spec.deposit)} USDC: {self.unknown_why()}"
            if unknown
            else f"deposited {format_usdc(from_base_units(self.facts.deposited))}{pending} of {format_usdc(self.spec.deposit)} USDC",
            depends=(self.onboard_step, register_id, approve_id),
            blocked=blocked,
            params=DepositParams(amount_base_units=need, target_base_units=target),
        )
