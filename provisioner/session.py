"""One run's inputs: the manifest, the accounts it selects, the open clients; and its first look.

The run is data flowing one way: manifest -> desired (``Session.manifest``); clients ->
facts (``observe``); (desired, facts) -> plan (``plan.planner.make_plan``, pure); plan ->
executor (``apply.run``). ``look`` is the middle two, shared by plan, apply and status.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from provisioner.connections import Connections, connect
from provisioner.errors import ProvisionerError
from provisioner.facts import WorldFacts
from provisioner.manifest.loader import load_manifest
from provisioner.manifest.model import AccountSpec, Manifest
from provisioner.manifest.trust import TRUSTED, LoadPolicy
from provisioner.observe import (
    DEFAULT_PARALLELISM,
    Derive,
    SignerCheck,
    no_signer,
    observe,
    unstored_keys,
)
from provisioner.plan.model import Plan
from provisioner.plan.planner import PlanOptions, make_plan, plan_account
from provisioner.redact import Redactor
from provisioner.waits import WaitHook, no_wait_hook

Shard = tuple[int, int]


@dataclass(frozen=True)
class Session:
    manifest: Manifest
    accounts: tuple[AccountSpec, ...]
    conn: Connections
    parallelism: int = DEFAULT_PARALLELISM

    @property
    def redactor(self) -> Redactor:
        return self.conn.redactor

    def only(self, names: Collection[str]) -> Session:
        """The same session narrowed to ``names`` (in manifest order)."""
        return replace(self, accounts=tuple(a for a in self.accounts if a.name in names))

    def observe(
        self,
        known: WorldFacts | None = None,
        *,
        check_signer: SignerCheck = no_signer,
        derive: Derive = Derive.LOCAL,
    ) -> WorldFacts:
        return observe(
            self.conn,
            self.accounts,
            parallelism=self.parallelism,
            known=known,
            check_signer=check_signer,
            derive=derive,
        )


def open_session(
    manifest_file: str,
    *,
    targets: Collection[str] = (),
    shard: Shard | None = None,
    parallelism: int = DEFAULT_PARALLELISM,
    redactor: Redactor | None = None,
    log: Callable[[str], None] = lambda _m: None,
    on_wait: WaitHook = no_wait_hook,
    policy: LoadPolicy = TRUSTED,
    revoke_vault_token: bool = True,
) -> Session:
    """Load the manifest, select the accounts, connect (which checks the chain id).

    ``policy``: how far the manifest is trusted (``manifest.trust``); an untrusted one is
    observed without reading a secret. ``revoke_vault_token``: closing the connections
    revokes a token a Vault login obtained.
    """
    redactor = redactor or Redactor()
    manifest = load_manifest(manifest_file, policy=policy, on_value=redactor.register_interpolated)
    accounts = select_accounts(manifest, targets, shard)
    conn = connect(
        manifest,
        redactor=redactor,
        log=log,
        untrusted=policy.is_untrusted,
        allowed_env=policy.allowed_env,
        revoke_vault_token=revoke_vault_token,
        on_wait=on_wait,
    )
    return Session(manifest, tuple(accounts), conn, parallelism)


def work_for(options: PlanOptions) -> SignerCheck:
    """Whether the planner has work for an account under ``options``, or dYdX lists keys no
    destination holds (which the derived default key must be told apart from; a key in its
    rotation overlap is one): only then is its signer worth resolving."""
    return lambda spec, facts: (
        bool(plan_account(spec, facts, options).steps) or unstored_keys(facts)
    )


def look(
    session: Session,
    options: PlanOptions,
    known: WorldFacts | None = None,
    *,
    at: float | None = None,
) -> tuple[WorldFacts, Plan]:
    """Observe the session's accounts, then plan; ``known``: facts of an earlier look this run;
    ``options.derive``: remote signers derive a STARK key Vault lacks too (local ones always);
    ``at``: plan as at this time instead of when the facts were read (a saved plan's own, so
    that the ages in its rotation steps are what they were when it was reviewed)."""
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    derive = Derive.ALL if options.derive else Derive.LOCAL
    if session.conn.untrusted:  # resolves no signer: nothing is derived
        derive = Derive.OFF
    facts = session.observe(known, check_signer=work_for(options), derive=derive)
    if at is not None:
        facts = replace(facts, accounts=tuple(replace(a, observed_at=at) for a in facts.accounts))
    return facts, make_plan(session.manifest, facts, options, created_at=created)


def select_accounts(
    manifest: Manifest, targets: Collection[str], shard: Shard | None
) -> list[AccountSpec]:
    accounts = list(manifest.accounts)
    if targets:
        known = {a.name for a in accounts}
        unknown = [t for t in targets if t not in known]
        if unknown:
            raise ProvisionerError(
                f"--target {', '.join(unknown)}: no such account in {manifest.path}"
            )
        accounts = [a for a in accounts if a.name in targets]
    if shard:
        index, count = shard
        accounts = [a for a in accounts if shard_of(a.name, count) == index]
    return accounts


def parse_shard(text: str) -> Shard:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ProvisionerError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ProvisionerError(f"--shard {text!r}: expected 0 <= I < N")
    return i, n


def shard_of(name: str, count: int) -> int:
    """Stable across runs and machines: a hash of the account name, not its position in the file."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count
