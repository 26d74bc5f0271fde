"""Before apply writes anything: can the Vault token write what this plan will write?

A token that may read but not write a destination would otherwise fail halfway, after
an onboarding or a new API key whose secret then has nowhere to go. The check asks
Vault (``sys/capabilities-self``) once for every path the plan's steps write, the
run lock, each account's locks (its name's and its address's) and its journal, and
refuses naming each missing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from provisioner.apply.lock import account_lock_path, sender_lock_path
from provisioner.errors import ProvisionerError
from provisioner.facts import WorldFacts
from provisioner.journal import sender_folder
from provisioner.manifest.model import AccountSpec, Manifest
from provisioner.plan.model import Plan, Step, StepKind
from provisioner.plan.params import ApiKeyParams, RotateApiKeyParams
from provisioner.records import journal_path

WRITE = frozenset({"create", "update"})


class MissingCapabilities(ProvisionerError):
    pass


class _CapabilityView(Protocol):
    def data_path(self, path: str) -> str: ...
    def metadata_path(self, path: str) -> str: ...
    def missing_capabilities(
        self, paths_and_caps: Mapping[str, set[str]]
    ) -> dict[str, set[str]]: ...


def required(
    vault: _CapabilityView, manifest: Manifest, plan: Plan, facts: WorldFacts, run_lock: str
) -> dict[str, set[str]]:
    """API path -> capabilities this plan needs on it (``run_lock``: the run lock's path)."""
    need: dict[str, set[str]] = {}

    def add(path: str, caps: frozenset[str] | set[str]) -> None:
        need.setdefault(path, set()).update(caps)

    state = manifest.vault.state_path
    add(vault.data_path(run_lock), {"read", *WRITE})
    specs = {a.name: a for a in manifest.accounts}
    unsettled = {a.name for a in facts.accounts if a.unsettled}
    for acc in plan.accounts:
        runnable = [s for s in acc.steps if not s.blocked]
        if not runnable and acc.name not in unsettled:
            continue
        add(vault.data_path(account_lock_path(state, acc.name)), {"read", *WRITE})
        chain_id = manifest.network.chain_id
        add(
            vault.data_path(sender_lock_path(state, chain_id, specs[acc.name].address)),
            {"read", *WRITE},
        )
        journal = journal_path(state, acc.name)
        entry = f"{journal}/entry"  # any entry: policies grant the journal by prefix
        add(vault.metadata_path(journal), {"list"})
        add(vault.data_path(entry), {"read", *WRITE})
        add(vault.metadata_path(entry), {"delete"})
        sent = sender_folder(state, chain_id, specs[acc.name].address)
        add(vault.metadata_path(sent.rpartition("/")[0]), {"list"})  # the run's one listing
        add(vault.metadata_path(sent), {"list"})
        add(vault.data_path(f"{sent}/entry"), {"read", *WRITE})
        add(vault.metadata_path(f"{sent}/entry"), {"delete"})
        for path in sorted({p for s in runnable for p in _written(specs[acc.name], s)}):
            add(vault.data_path(path), {"read", *WRITE})
            add(vault.metadata_path(path), WRITE)
    return need


def check(
    vault: _CapabilityView, manifest: Manifest, plan: Plan, facts: WorldFacts, run_lock: str
) -> None:
    """MissingCapabilities naming every path and capability the token lacks; nothing written."""
    missing = vault.missing_capabilities(required(vault, manifest, plan, facts, run_lock))
    if not missing:
        return
    listed = "; ".join(
        f"{path} ({', '.join(sorted(caps))})" for path, caps in sorted(missing.items())
    )
    raise MissingCapabilities(
        f"the Vault token lacks capabilities this apply needs: {listed}; nothing was done"
    )


def _written(spec: AccountSpec, step: Step) -> list[str]:
    """The Vault destinations a step writes (its journal aside)."""
    if step.kind is StepKind.STARK_KEY or step.kind is StepKind.RECORD_ACCOUNT:
        return [spec.stark_key_path]
    if step.kind is StepKind.ONBOARD:
        return [spec.stark_key_path, *(k.secret_path for k in spec.api_keys if k.is_default)]
    if step.kind in (StepKind.API_KEY, StepKind.REPLACE_API_KEY):
        return [step.params_as(ApiKeyParams).path]
    if step.kind is StepKind.ROTATE_API_KEY:
        return [step.params_as(RotateApiKeyParams).path]
    return []
