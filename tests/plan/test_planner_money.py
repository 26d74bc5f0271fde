"""The planner's side of the money-path invariants (issue 15), on plain data: the default key
is the derived one, transactions not final yet are pending, an edited step is told apart."""

from __future__ import annotations

from dataclasses import replace

from test_planner import API, STARK, ours, spec

from provisioner.facts import AccountFacts, ApiKeyIntentFact, JournalEntry, VaultEntry
from provisioner.plan.model import Note, PlanOptions, StepKind
from provisioner.plan.params import to_wire
from provisioner.plan.planner import plan_account

DERIVED = "11111111-0000-0000-0000-000000000001"
HEDGER = "22222222-0000-0000-0000-000000000002"


def converged(**kw: object) -> AccountFacts:
    base = AccountFacts(
        name="mm-alpha",
        address="0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        stark_secret=STARK,
        api_secrets=(
            ("default", ours("dydx/mm-alpha/api/default", API, key=DERIVED)),
            ("hedger", ours("dydx/mm-alpha/api/hedger", API, key=HEDGER)),
        ),
        user_exists=True,
        dydx_api_keys=frozenset({DERIVED, HEDGER}),
        stark_key_owner="0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        usdc_balance=10**12,
        usdc_allowance=0,
        eth_balance_wei=10**19,
        deposited=8_200_000,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_a_default_destination_holding_another_key_is_drift_and_never_pruned() -> None:
    wrong = ours("dydx/mm-alpha/api/default", API, key=HEDGER)
    facts = converged(api_secrets=(("default", wrong),), default_key_id=DERIVED)
    plan = plan_account(spec(api_keys=spec().api_keys[:1]), facts, PlanOptions(prune_api_keys=True))
    assert (
        Note(
            "drift",
            f"the default API key's destination dydx/mm-alpha/api/default holds key {HEDGER}, "
            f"not the default key {DERIVED}",
        )
        in plan.notes
    )
    kinds = {
        (s.kind, to_wire(s.params).get("key") or to_wire(s.params).get("name")) for s in plan.steps
    }
    assert (StepKind.API_KEY, "default") in kinds  # repaired by storing the derived key
    assert (StepKind.DELETE_API_KEY, DERIVED) not in kinds
    assert (StepKind.DELETE_API_KEY, HEDGER) in kinds  # what the manifest no longer names


def test_pruning_without_the_derived_default_id_is_blocked() -> None:
    facts = converged(dydx_api_keys=frozenset({DERIVED, HEDGER, "33"}))
    plan = plan_account(spec(), facts, PlanOptions(prune_api_keys=True))
    [delete] = [s for s in plan.steps if s.kind is StepKind.DELETE_API_KEY]
    assert delete.blocked and "derived from the onboarding signature" in delete.blocked


def test_transactions_not_final_are_pending_and_counted_once() -> None:
    for status in ("mined", "pending", "dropped", "awaiting"):
        entry = JournalEntry("deposit", "0xab", 3, amount=1_000_000, status=status)
        facts = converged(deposited=7_200_000, journal=(entry,), pending_deposits=1_000_000)
        plan = plan_account(spec(), facts)
        assert [n.level for n in plan.notes] == ["pending"], status
        assert not [s for s in plan.steps if s.kind is StepKind.DEPOSIT], status
    done = JournalEntry("deposit", "0xab", 3, amount=1_000_000, status="confirmed")
    plan = plan_account(spec(), converged(journal=(done,)))
    assert [n.level for n in plan.notes] == ["info"]


def test_unconfirmed_deposit_events_count_toward_the_target_but_are_pending() -> None:
    plan = plan_account(spec(), converged(deposited=7_000_000, unconfirmed_deposits=1_200_000))
    assert not plan.steps
    assert [n.level for n in plan.notes] == ["pending"]


def test_keys_that_appeared_without_a_recorded_id_are_reported_not_pruned() -> None:
    intent = ApiKeyIntentFact("hedger", None, (), ("44",))
    facts = converged(
        dydx_api_keys=frozenset({DERIVED, HEDGER, "44"}),
        api_key_intents=(intent,),
        default_key_id=DERIVED,
    )
    plan = plan_account(spec(), facts, PlanOptions(prune_api_keys=True))
    assert not [s for s in plan.steps if s.kind is StepKind.DELETE_API_KEY]
    assert any("44" in n.message and "left alone" in n.message for n in plan.notes)


def test_the_default_entry_is_a_plain_vault_entry_when_missing() -> None:
    facts = converged(api_secrets=(("default", VaultEntry("dydx/mm-alpha/api/default", False)),))
    plan = plan_account(spec(api_keys=spec().api_keys[:1]), facts)
    assert [s.kind for s in plan.steps] == [StepKind.API_KEY]
