"""Review finding (session 4): an allowance stands when the run's ceiling refuses the deposit.

The plan's guardrail holds the ceilings to the planned deposits only; the run's budget is also
charged by journaled deposits it rebroadcasts (and by other accounts' deposits). ``approve``
sends its allowance without asking the budget, so when ``deposit`` is then refused by it the
allowance stays with no deposit (README: "approve allows ... nothing when no deposit is
needed"; issue 21: "a deposit that cannot happen leaves no allowance standing").
"""

from __future__ import annotations

from support.apply_fakes import top_up_plan, world

from provisioner.apply.budget import DepositBudget
from provisioner.apply.executor import execute

USDC = 10**6


def test_a_deposit_the_ceiling_refuses_leaves_no_allowance() -> None:
    w = world(deposit="5")
    name = w.spec.name
    plan = top_up_plan(w, 5 * USDC, 5 * USDC)
    # --max-deposit 10; 6 USDC already charged this run (a journaled deposit rebroadcast, or
    # another account's deposit): the guardrail saw only this plan's 5 and let it through
    budget = DepositBudget((("--max-deposit", 10 * USDC),), spent=6 * USDC)
    (result,) = execute(w.conn, plan, budget=budget)
    assert result.failed == f"{name}/approve"  # refused by the ceiling before the allowance
    assert "over --max-deposit of 10 USDC" in (result.error or "")
    assert w.chain.allowance.get(w.spec.address, 0) == 0, "an allowance for no deposit"
    assert w.chain.raw_sent == []


def test_no_allowance_for_a_deposit_the_wallet_cannot_pay() -> None:
    w = world(deposit="5")
    name = w.spec.name
    plan = top_up_plan(w, 5 * USDC, 5 * USDC)
    w.chain.usdc_balance = 2 * USDC  # spent elsewhere between plan and apply
    (result,) = execute(w.conn, plan, budget=DepositBudget())
    assert result.failed == f"{name}/approve"
    assert "the wallet holds 2 USDC, the deposit needs 5 USDC" in (result.error or "")
    assert w.chain.allowance.get(w.spec.address, 0) == 0 and w.chain.raw_sent == []
