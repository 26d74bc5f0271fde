"""apply/run.py end to end on in-memory clients: the events a run reports, and what it refuses."""

from __future__ import annotations

import pytest
from support.apply_fakes import STATE, World, world

from provisioner.apply.events import (
    Cancelled,
    Event,
    Finished,
    NothingToApply,
    PlanReady,
    StepDone,
    StepStarted,
)
from provisioner.apply.guardrails import GuardrailRefused
from provisioner.apply.run import ApplyRequest, StalePlan, run_apply
from provisioner.plan.planner import PlanOptions
from provisioner.session import Session, look

USDC = 10**6


def session(w: World) -> Session:
    return Session(w.conn.manifest, (w.spec,), w.conn, parallelism=2)  # type: ignore[arg-type]


def never(_plan: object) -> bool:
    raise AssertionError("nobody is asked with --auto-approve or a saved plan")


def lock_records(w: World) -> list[dict[str, object]]:
    return [data for path, (data, _) in w.vault.state.items() if "/locks/" in f"/{path}"]


def test_a_run_reports_the_plan_each_step_and_the_summary_in_order() -> None:
    w = world(deposit="5")
    seen: list[Event] = []
    rc = run_apply(session(w), ApplyRequest(auto_approve=True), report=seen.append, approve=never)
    assert rc == 0
    kinds = [type(e).__name__ for e in seen]
    assert kinds == [
        "PlanReady",
        "StepStarted",
        "StepDone",
        "StepStarted",
        "StepDone",
        "Finished",
    ]
    started = [e.step.kind.value for e in seen if isinstance(e, StepStarted)]
    assert started == ["approve", "deposit"]
    done = seen[-1]
    assert isinstance(done, Finished) and done.steps_done == 2 and not done.failed
    assert w.chain.credited == {(w.dydx.stark.public_key, 7): 5 * USDC}
    assert lock_records(w) and all(not data for data in lock_records(w))  # all released


def test_a_converged_run_takes_no_lock_and_writes_nothing() -> None:
    w = world(deposit="5")
    w.chain.credited[(w.dydx.stark.public_key, 7)] = 5 * USDC
    seen: list[Event] = []
    rc = run_apply(session(w), ApplyRequest(auto_approve=True), report=seen.append, approve=never)
    assert rc == 0
    assert [type(e) for e in seen] == [PlanReady, NothingToApply]
    assert w.events == [] and w.vault.state == {}


def test_a_saved_plan_whose_facts_changed_is_refused_before_any_step() -> None:
    w = world(deposit="5")
    _, saved = look(session(w), PlanOptions())
    w.chain.credited[(w.dydx.stark.public_key, 7)] = 2 * USDC  # someone deposited meanwhile
    seen: list[Event] = []
    request = ApplyRequest(saved=saved, saved_name="plan.json")
    with pytest.raises(StalePlan, match="plan.json is stale"):
        run_apply(session(w), request, report=seen.append, approve=never)
    assert w.chain.raw_sent == [] and seen == []
    assert all(not data for data in lock_records(w))


def test_a_saved_plan_with_the_same_facts_is_applied_as_approved() -> None:
    w = world(deposit="5")
    _, saved = look(session(w), PlanOptions())
    seen: list[Event] = []
    rc = run_apply(session(w), ApplyRequest(saved=saved), report=seen.append, approve=never)
    assert rc == 0
    # what is shown and run is the fresh plan, equal to the saved one step for step
    assert isinstance(seen[0], PlanReady) and seen[0].plan.steps() == saved.steps()
    assert [e.step.id for e in seen if isinstance(e, StepDone)] == [s.id for s in saved.steps()]


def test_a_person_who_does_not_say_yes_cancels_after_the_locks_and_before_any_step() -> None:
    w = world(deposit="5")
    seen: list[Event] = []
    asked: list[object] = []

    def decline(plan: object) -> bool:
        asked.append(plan)
        return False

    rc = run_apply(session(w), ApplyRequest(interactive=True), report=seen.append, approve=decline)
    assert rc == 1 and len(asked) == 1
    assert [type(e) for e in seen] == [PlanReady, Cancelled]
    assert w.chain.raw_sent == [] and all(not data for data in lock_records(w))


def test_a_deposit_over_the_run_ceiling_is_refused_before_any_lock() -> None:
    w = world(deposit="5")
    request = ApplyRequest(auto_approve=True, max_deposit=4 * USDC)
    with pytest.raises(GuardrailRefused, match="over --max-deposit of 4"):
        run_apply(session(w), request, report=lambda _e: None, approve=never)
    assert w.events == [] and not any(p.startswith(f"{STATE}/") for p in w.vault.state)
