"""Refusals before the first write: a deposit ceiling, mainnet unconfirmed or uncapped, unusable signers."""

from __future__ import annotations

from provisioner.errors import ProvisionerError
from provisioner.facts import WorldFacts
from provisioner.manifest.model import Manifest
from provisioner.money import format_usdc, from_base_units, to_base_units
from provisioner.plan.model import Plan
from provisioner.plan.params import DepositParams
from provisioner.redact import Redactor

MAINNET_CHAIN_ID = 1


class GuardrailRefused(ProvisionerError):
    pass


def planned_deposits(plan: Plan) -> int:
    """Base units the plan's runnable deposit steps would send."""
    return sum(
        s.params.amount_base_units
        for s in plan.steps()
        if isinstance(s.params, DepositParams) and not s.blocked
    )


def check(
    manifest: Manifest,
    plan: Plan,
    *,
    max_deposit: int | None,
    interactive: bool,
    confirm_mainnet: bool,
) -> None:
    """``max_deposit``: the run's own ceiling in base units (``--max-deposit``), besides the manifest's."""
    total = planned_deposits(plan)
    ceilings = []
    if manifest.max_deposit is not None:
        ceilings.append(("the manifest's max_deposit", to_base_units(manifest.max_deposit)))
    if max_deposit is not None:
        ceilings.append(("--max-deposit", max_deposit))
    for what, ceiling in ceilings:
        if total > ceiling:
            raise GuardrailRefused(
                f"this run would deposit {format_usdc(from_base_units(total))} USDC, over {what} of {format_usdc(from_base_units(ceiling))}; nothing was done"
            )
    if manifest.network.chain_id != MAINNET_CHAIN_ID:
        return
    # Every apply on mainnet, saved plans and --auto-approve included: a ceiling, and a
    # confirmation (--confirm-mainnet, or 'mainnet' typed on a terminal: see the CLI).
    if not ceilings:
        raise GuardrailRefused(
            "mainnet: an apply needs a deposit ceiling (the manifest's max_deposit, or "
            "--max-deposit); nothing was done"
        )
    if not confirm_mainnet:
        how = (
            "type 'mainnet' when asked, or pass --confirm-mainnet"
            if interactive
            else "pass --confirm-mainnet"
        )
        raise GuardrailRefused(
            f"mainnet: every apply needs its confirmation ({how}); nothing was done"
        )


def refuse_unusable_signers(facts: WorldFacts, redactor: Redactor) -> None:
    """A signer that cannot sign for its account's address stops the run before any write."""
    bad = [f"{a.name}: {a.signer_error}" for a in facts.accounts if a.signer_error]
    if bad:
        listed = "; ".join(bad)
        raise GuardrailRefused(redactor.redact(f"signer check failed ({listed}); nothing was done"))
