"""Apply's log is the truth (issue 17): each step reports what it did, with the numbers it used.

A planned amount that was not paid is never shown as done; the allowance is what the real
remaining deposit needs, and none is sent when nothing is to deposit.
"""

from __future__ import annotations

import io
import json
from importlib.resources import files

from jsonschema import Draft202012Validator
from support.apply_fakes import World, top_up_plan, world

from provisioner.apply.events import AccountResult, Event, Finished, Outcome, StepDone
from provisioner.apply.executor import execute
from provisioner.cli.output.jsonl import JsonReporter
from provisioner.cli.output.lines import Lines
from provisioner.cli.output.plain import PlainReporter
from provisioner.plan.model import Plan
from provisioner.plan.params import UNLIMITED_ALLOWANCE
from provisioner.redact import Redactor

USDC = 10**6


def _top_up(w: World, planned: int, target: int, allowance: str | int = "exact") -> Plan:
    """What a plan that did not know the deposits (worst case) asks for."""
    approve = UNLIMITED_ALLOWANCE if allowance == "max" else planned
    return top_up_plan(w, planned, target, approve=approve)


def _outcomes(events: list[Event]) -> dict[str, Outcome]:
    return {e.step.kind.value: e.outcome for e in events if isinstance(e, StepDone)}


def test_funded_past_the_target_no_allowance_is_sent_and_nothing_is_shown_as_paid() -> None:
    w = world(deposit="10")
    w.chain.credited[(w.dydx.stark.public_key, 7)] = 10_010_000
    seen: list[Event] = []
    (result,) = execute(w.conn, _top_up(w, 10 * USDC, 10 * USDC), report=seen.append)
    assert w.chain.raw_sent == [] and w.chain.allowance == {}  # no standing allowance
    out = _outcomes(seen)
    assert out["approve"] == Outcome(
        False, "10.01 of 10 USDC already deposited: no allowance needed, none sent"
    )
    assert out["deposit"] == Outcome(False, "10.01 of 10 USDC already deposited")
    assert result.done == () and result.unchanged == ("mm-unit/approve", "mm-unit/deposit")


def test_a_partial_deposit_pays_and_allows_only_the_rest() -> None:
    w = world(deposit="4.5")
    w.chain.credited[(w.dydx.stark.public_key, 7)] = 3 * USDC
    seen: list[Event] = []
    (result,) = execute(w.conn, _top_up(w, 4_500_000, 4_500_000), report=seen.append)
    assert result.failed is None, result.error
    assert w.chain.allowance[w.spec.address] == 1_500_000  # the rest, not the 4.5 planned
    assert w.chain.credited[(w.dydx.stark.public_key, 7)] == 4_500_000
    out = _outcomes(seen)
    assert out["approve"] == Outcome(
        True, "sent approve of 1.5 USDC for the exchange (the deposit needs 1.5; allowance was 0)"
    )
    assert out["deposit"] == Outcome(True, "sent a deposit of 1.5 USDC (3 of 4.5 already there)")


def test_an_allowance_already_enough_is_not_sent_again() -> None:
    w = world(deposit="4.5")
    w.chain.credited[(w.dydx.stark.public_key, 7)] = 3 * USDC
    w.chain.allowance[w.spec.address] = 2 * USDC
    seen: list[Event] = []
    execute(w.conn, _top_up(w, 4_500_000, 4_500_000), report=seen.append)
    assert _outcomes(seen)["approve"] == Outcome(
        False, "the allowance of 2 USDC covers the 1.5 USDC deposit"
    )
    assert len(w.chain.raw_sent) == 1  # the deposit only


def test_allowance_max_stays_the_maximum() -> None:
    w = world(deposit="4.5")
    w.chain.credited[(w.dydx.stark.public_key, 7)] = 3 * USDC
    seen: list[Event] = []
    execute(w.conn, _top_up(w, 4_500_000, 4_500_000, allowance="max"), report=seen.append)
    assert _outcomes(seen)["approve"].text.startswith("sent approve of an unlimited allowance")


def test_the_cli_shows_what_was_done_not_what_was_planned() -> None:
    w = world(deposit="10")
    w.chain.credited[(w.dydx.stark.public_key, 7)] = 10_010_000
    out, err = io.StringIO(), io.StringIO()
    plan = _top_up(w, 10 * USDC, 10 * USDC)
    with PlainReporter(Redactor(), Lines(out, err)) as report:
        results = execute(w.conn, plan, report=report)
        report(Finished(tuple(results)))
    assert "mm-unit: nothing to do: 10.01 of 10 USDC already deposited" in err.getvalue()
    assert "done:" not in err.getvalue()


def test_apply_json_carries_each_outcome() -> None:
    w = world(deposit="10")
    w.chain.credited[(w.dydx.stark.public_key, 7)] = 10_010_000
    out = io.StringIO()
    report = JsonReporter(Redactor(), Lines(out, io.StringIO()))
    results = execute(w.conn, _top_up(w, 10 * USDC, 10 * USDC), report=report)
    report(Finished(tuple(results)))
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    schema = json.loads(files("provisioner.schemas").joinpath("events.schema.json").read_text())
    for event in events:
        Draft202012Validator(schema).validate(event)
    completed = [e for e in events if e["type"] == "step_complete"]
    assert {e["changed"] for e in completed} == {False}
    assert any(e["outcome"] == "10.01 of 10 USDC already deposited" for e in completed)
    [summary] = [e for e in events if e["type"] == "apply_summary"]
    assert summary["changes"]["steps_done"] == 0
    assert summary["changes"]["steps_unchanged"] == len(completed)


def test_the_summary_counts_only_steps_that_changed_something() -> None:
    out = io.StringIO()
    with PlainReporter(Redactor(), Lines(out, io.StringIO())) as report:
        report(Finished((AccountResult("a", done=("a/deposit",), unchanged=("a/approve",)),)))
    assert "Apply complete: 1 step(s) done, 1 found nothing to do, 0 account(s) failed." in (
        out.getvalue()
    )
