"""Review finding (session 4): an allowance stands when the run's ceiling refuses the deposit.

The plan's guardrail holds the ceilings to the planned deposits only; the run's budget is also
charged by journaled deposits it rebroadcasts (and by other accounts' deposits). ``approve``
sends its allowance without asking the budget, so when ``deposit`` is then refused by it the
allowance stays with no deposit (README: "approve allows ... nothing when no deposit is
needed"; issue 21: "a deposit that cannot happen leaves no allowance standing").
"""

from __future__ import annotations

import pytest
from support.apply_fakes import world

from provisioner.apply.budget import DepositBudget
from provisioner.apply.executor import execute
from provisioner.plan.model import AccountPlan, Action, Plan, Step, StepKind
from provisioner.plan.params import ApproveParams, DepositParams

USDC = 10**6


@pytest.mark.xfail(
    strict=True,
    reason="review: approve does not consult the run's deposit budget; a deposit the ceiling "
    "then refuses leaves the allowance standing",
)
def test_a_deposit_the_ceiling_refuses_leaves_no_allowance() -> None:
    w = world(deposit="5")
    name = w.spec.name
    amount = 5 * USDC
    steps = (
        Step(
            id=f"{name}/approve",
            account=name,
            kind=StepKind.APPROVE,
            action=Action.UPDATE,
            summary="approve 5 USDC for the exchange",
            reason="allowance 0 USDC < 5 USDC",
            params=ApproveParams(amount_base_units=amount, target_base_units=amount),
        ),
        Step(
            id=f"{name}/deposit",
            account=name,
            kind=StepKind.DEPOSIT,
            action=Action.CREATE,
            summary="deposit 5 USDC",
            reason="deposited 0 of 5 USDC",
            params=DepositParams(amount_base_units=amount, target_base_units=amount),
            depends_on=(f"{name}/approve",),
        ),
    )
    plan = Plan(
        "unit.yaml",
        "sepolia",
        w.conn.manifest.network.chain_id,
        "sha256:t",
        (AccountPlan(name=name, address=w.spec.address, steps=steps),),
    )
    # --max-deposit 10; 6 USDC already charged this run (a journaled deposit rebroadcast, or
    # another account's deposit): the guardrail saw only this plan's 5 and let it through
    budget = DepositBudget((("--max-deposit", 10 * USDC),), spent=6 * USDC)
    (result,) = execute(w.conn, plan, budget=budget)
    assert result.failed == f"{name}/deposit"  # refused by the ceiling, rightly
    assert w.chain.allowance.get(w.spec.address, 0) == 0, "an allowance for no deposit"
