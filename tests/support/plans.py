"""Plans built by hand, for the renderers and reporters (no manifest, no network)."""

from __future__ import annotations

from provisioner.plan.model import AccountPlan, Action, Note, Plan, Step, StepKind
from provisioner.plan.params import (
    ApiKeyParams,
    ApproveParams,
    DepositParams,
    OnboardParams,
    RegisterParams,
    StarkKeyParams,
)


def onboarding_steps(name: str, usdc: int = 25) -> tuple[Step, ...]:
    """The eight-ish steps a new account needs: STARK key, onboard, register, approve,
    deposit, default API key."""
    units = usdc * 1_000_000
    k = StepKind
    specs = [
        (
            k.STARK_KEY,
            f"derive the STARK key and store it at dydx/{name}/stark",
            StarkKeyParams(path=f"dydx/{name}/stark", version=0),
        ),
        (k.ONBOARD, f"onboard {name} at dYdX (POST /v3/onboarding)", OnboardParams()),
        (k.REGISTER, f"register {name}'s STARK key on L1", RegisterParams()),
        (k.APPROVE, f"approve {usdc} USDC", ApproveParams(amount_base_units=units)),
        (
            k.DEPOSIT,
            f"deposit {usdc} USDC",
            DepositParams(amount_base_units=units, target_base_units=units),
        ),
        (
            k.API_KEY,
            f"store API key default at dydx/{name}/api/default",
            ApiKeyParams(path=f"dydx/{name}/api/default", name="default"),
        ),
    ]
    return tuple(
        Step(
            id=f"{name}/{kind.value}",
            account=name,
            kind=kind,
            action=Action.CREATE,
            summary=summary,
            reason="missing",
            params=params,
        )
        for kind, summary, params in specs
    )


def fleet_plan(
    names: list[str], *, notes: dict[str, str] | None = None, usdc: dict[str, int] | None = None
) -> Plan:
    notes = notes or {}
    usdc = usdc or {}
    accounts = tuple(
        AccountPlan(
            name=name,
            address=f"0x{i + 1:040x}",
            steps=onboarding_steps(name, usdc.get(name, 25)),
            notes=(Note("warning", notes[name]),) if name in notes else (),
        )
        for i, name in enumerate(names)
    )
    return Plan(
        manifest="fleet.yaml",
        network="sandbox",
        chain_id=11155111,
        fingerprint="sha256:" + "0" * 64,
        accounts=accounts,
        created_at="2026-12-01T00:00:00Z",
    )
