"""What apply shows while it runs: whole lines under parallelism, keep-alive lines while it
waits, a JSON stream that follows its schema and carries no secret, the live display's text."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from importlib.resources import files

import pytest
from jsonschema import Draft202012Validator
from support.plans import fleet_plan

from provisioner.apply.events import (
    AccountBusy,
    AccountResult,
    Cancelled,
    Finished,
    LeaseTakenOver,
    LeaseTrouble,
    LeaseWaiting,
    NothingToApply,
    Outcome,
    PlanReady,
    StepDone,
    StepFailed,
    StepStarted,
)
from provisioner.apply.holder import Process
from provisioner.apply.lease import LeaseRecord, Takeover
from provisioner.cli.output.jsonl import JsonReporter
from provisioner.cli.output.lines import Lines
from provisioner.cli.output.live import LiveReporter
from provisioner.cli.output.plain import PlainReporter
from provisioner.plan.model import Step
from provisioner.redact import Redactor
from provisioner.waits import Wait

ACCOUNTS = [f"mm-{i:02d}" for i in range(8)]
CANARY = "canary-secret-5f1e0c9a7b"


def _done(step: Step) -> StepDone:
    """A step that did what it planned: its outcome says so in the plan's words."""
    return StepDone(step, Outcome(True, step.summary))


class SlowStream(io.StringIO):
    """A stream whose every write lets other threads run, as a pipe to a busy CI runner does."""

    def write(self, text: str) -> int:
        n = super().write(text)
        time.sleep(0.0005)
        return n

    def isatty(self) -> bool:
        return False


def _storm(report, plan) -> None:  # type: ignore[no-untyped-def]
    """Every account's steps reported from its own thread at once, as the executor does."""
    start = threading.Barrier(len(plan.accounts))

    def account(acc) -> None:  # type: ignore[no-untyped-def]
        start.wait()
        for step in acc.steps:
            report(StepStarted(step))
            report(_done(step))

    threads = [threading.Thread(target=account, args=(a,)) for a in plan.accounts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _torn(text: str, names: list[str]) -> list[str]:
    """Lines that do not start with one account's name, or hold a second event."""
    head = rf"  (?:{'|'.join(map(re.escape, names))}): "
    return [
        line
        for line in text.split("\n")[:-1]
        if not re.match(head, line) or len(re.findall(head, line)) > 1
    ]


def test_the_harness_sees_torn_lines_from_print() -> None:
    """The storm below does tear ``print`` lines (what apply did before one writer held them)."""
    plan = fleet_plan(ACCOUNTS)
    err = SlowStream()

    def report(event) -> None:  # type: ignore[no-untyped-def]
        if isinstance(event, StepStarted | StepDone):
            print(f"  {event.step.account}: {event.step.summary}", file=err, flush=True)

    _storm(report, plan)
    assert _torn(err.getvalue(), ACCOUNTS)


@pytest.mark.parametrize("kind", ["plain", "json"])
def test_every_line_is_whole_under_parallelism(kind: str) -> None:
    plan = fleet_plan(ACCOUNTS)
    out, err = SlowStream(), SlowStream()
    lines = Lines(out, err)
    reporter = (
        PlainReporter(Redactor(), lines) if kind == "plain" else JsonReporter(Redactor(), lines)
    )
    with reporter:
        _storm(reporter, plan)
    if kind == "plain":
        text = err.getvalue()
        assert text.count("\n") == 2 * sum(len(a.steps) for a in plan.accounts)
        assert _torn(text, ACCOUNTS) == []
    else:
        for line in out.getvalue().splitlines():
            json.loads(line)  # a torn line would not parse


def test_plain_lines_say_every_30s_what_the_run_waits_for_without_control_codes() -> None:
    plan = fleet_plan(["mm-alpha", "mm-beta"])
    out, err = SlowStream(), SlowStream()
    with PlainReporter(Redactor(), Lines(out, err), keepalive=0.05) as report:
        report(PlanReady(plan))
        report(StepStarted(plan.accounts[0].steps[0]))
        report(Wait("dYdX write window", time.time() + 41, account="mm-beta"))
        time.sleep(0.3)
        report(_done(plan.accounts[0].steps[0]))
        report(Finished((AccountResult("mm-alpha", done=("mm-alpha/stark_key",)),)))
        count = err.getvalue().count("still waiting")
        time.sleep(0.2)
    text = err.getvalue()
    assert "  mm-beta: waiting: dYdX write window: 41 s" in text
    assert re.search(r"still waiting: dYdX write window for mm-beta: 4\d s; 0 of 2 account", text)
    assert count >= 2
    assert err.getvalue().count("still waiting") == count  # none after the run finished
    assert "\x1b" not in text + out.getvalue()


def _events_schema() -> Draft202012Validator:
    schema = json.loads(files("provisioner").joinpath("schemas", "events.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_json_stream_follows_its_schema_and_redacts_secrets() -> None:
    plan = fleet_plan(["mm-alpha", "mm-beta"], notes={"mm-beta": "drift: key deleted"})
    redactor = Redactor()
    redactor.register(CANARY)
    out, err = io.StringIO(), io.StringIO()
    steps = plan.accounts[0].steps
    with JsonReporter(redactor, Lines(out, err)) as report:
        report(PlanReady(plan))
        report(StepStarted(steps[0]))
        report(Wait("dYdX write window", time.time() + 12, account="mm-alpha"))
        report(Wait("receipt of 0xabc", 0.0, subject="0xabc"))
        report(_done(steps[0]))
        report(StepStarted(steps[1]))
        report(StepFailed("mm-alpha", steps[1], f"dYdX refused the key {CANARY}"))
        report(StepFailed("mm-beta", None, "journal unreadable"))
        report(
            Finished(
                (
                    AccountResult(
                        "mm-alpha", done=(steps[0].id,), failed=steps[1].id, error=CANARY
                    ),
                    AccountResult("mm-beta", failed="journal", error="journal unreadable"),
                )
            )
        )
    assert err.getvalue() == ""
    validator = _events_schema()
    documents = [json.loads(line) for line in out.getvalue().splitlines()]
    for doc in documents:
        errors = [e.message for e in validator.iter_errors(doc)]
        assert not errors, (doc, errors)
    types = [d["type"] for d in documents]
    assert types[0] == "version"
    assert types.count("planned_step") == 12
    assert types[13:15] == ["note", "plan_summary"]
    assert types[15:] == [
        "step_start", "wait", "wait", "step_complete", "step_start",
        "step_errored", "step_errored", "apply_summary",
    ]  # fmt: skip
    start = documents[15]
    assert start["account"] == "mm-alpha" and start["step"]["kind"] == "stark_key"
    wait = documents[16]
    assert wait["account"] == "mm-alpha" and 11 <= wait["seconds"] <= 12 and not wait["over"]
    assert documents[17]["over"] is True
    assert CANARY not in out.getvalue()
    errored = documents[20]
    assert errored["step"]["id"] == "mm-alpha/onboard" and "refused the key" in errored["error"]


def _notices() -> list:  # type: ignore[type-arg]
    holder = LeaseRecord("run-1", Process.current(), 0.0, 60.0, 60)
    return [
        AccountBusy("mm-beta", holder, f"held by run-1 ({CANARY})"),
        LeaseTakenOver(Takeover("state/locks/manifest-1", holder, "its process is gone")),
        LeaseWaiting("a live lease holds the manifest: watching it for 60 s"),
        LeaseTrouble("renewing the lease failed: Vault answered 503"),
        NothingToApply(),
        Cancelled(),
    ]


def test_every_reporter_words_the_run_notices_alike() -> None:
    redactor = Redactor()
    redactor.register(CANARY)
    took = "took over state/locks/manifest-1 from "
    plain_out, plain_err = io.StringIO(), io.StringIO()
    with PlainReporter(redactor, Lines(plain_out, plain_err)) as report:
        for event in _notices():
            report(event)
    assert plain_out.getvalue() == "Nothing to apply.\nApply cancelled.\n"
    lines = plain_err.getvalue().splitlines()
    assert lines[0].startswith("  mm-beta: held by run-1 (") and CANARY not in lines[0]
    assert lines[1].startswith("  " + took) and lines[1].endswith(": its process is gone")
    assert lines[2:] == [
        "  a live lease holds the manifest: watching it for 60 s",
        "warning: renewing the lease failed: Vault answered 503",
    ]
    live_out, live_err = io.StringIO(), io.StringIO()
    with LiveReporter(redactor, Lines(live_out, live_err)) as report:
        for event in _notices():
            report(event)
    assert live_out.getvalue() == plain_out.getvalue()
    assert live_err.getvalue().splitlines()[-2:] == lines[2:]  # (the console wraps at 80)
    assert CANARY not in live_err.getvalue()
    json_out = io.StringIO()
    with JsonReporter(redactor, Lines(json_out, io.StringIO())) as report:
        for event in _notices():
            report(event)
    documents = [json.loads(line) for line in json_out.getvalue().splitlines()][1:]  # (version)
    validator = _events_schema()
    assert all(not list(validator.iter_errors(d)) for d in documents)
    assert [(d["type"], d["@level"], d.get("account")) for d in documents] == [
        ("note", "warn", "mm-beta"), ("note", "warn", None), ("note", "info", None),
        ("note", "warn", None), ("note", "info", None), ("note", "warn", None),
    ]  # fmt: skip
    assert documents[3]["@message"] == "renewing the lease failed: Vault answered 503"
    assert CANARY not in json_out.getvalue()


def test_the_live_display_counts_accounts_steps_and_waits() -> None:
    plan = fleet_plan(["mm-alpha", "mm-beta", "mm-gamma"])
    err = io.StringIO()
    live = LiveReporter(Redactor(), Lines(io.StringIO(), err))
    live.tally.on(PlanReady(plan))
    live.tally.started = time.time() - 20
    for step in plan.accounts[0].steps:
        live.tally.on(_done(step))
    live.tally.on(StepFailed("mm-gamma", plan.accounts[2].steps[0], "boom"))
    live.tally.on(Wait("dYdX write window", time.time() + 41.4, account="mm-beta"))
    console_text = _render(live)
    assert "1 of 3 account(s) done, 1 failed, 1 left" in console_text
    assert "steps 6 of 18" in console_text
    assert "dYdX write window for mm-beta: 41 s" in console_text
    assert "0:20 elapsed, about 0:4" in console_text  # never less than the wait


def _render(live: LiveReporter) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=120, no_color=True)
    with console.capture() as captured:
        console.print(live._render())
    return captured.get()


def test_the_live_display_prints_failures_as_they_happen_and_a_table_at_the_end() -> None:
    plan = fleet_plan(["mm-alpha", "mm-gamma"])
    redactor = Redactor()
    redactor.register(CANARY)
    out, err = io.StringIO(), io.StringIO()
    alpha, gamma = plan.accounts[0].steps, plan.accounts[1].steps
    with LiveReporter(redactor, Lines(out, err), refresh_per_second=50) as live:
        live(PlanReady(plan))
        live(StepStarted(gamma[0]))
        live(StepFailed("mm-gamma", gamma[0], f"Vault refused {CANARY}"))
        failure_shown = err.getvalue()
        for step in alpha:
            live(StepStarted(step))
            live(_done(step))
        live(
            Finished(
                (
                    AccountResult("mm-alpha", done=tuple(s.id for s in alpha), tx_hashes=("0xab",)),
                    AccountResult("mm-gamma", failed=gamma[0].id, error=f"Vault refused {CANARY}"),
                )
            )
        )
    assert "mm-gamma: FAILED at mm-gamma/stark_key: Vault refused" in failure_shown
    table = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert re.search(r"mm-gamma\s+.\s+FAILED at", table)
    assert re.search(r"mm-alpha\s+.\s+done\s+.\s+6\s+.\s+0\s+.\s+1", table)
    assert "  mm-alpha: transaction 0xab\n" in table
    assert "Apply complete: 6 step(s) done, 1 account(s) failed." in table
    assert "error: 1 of 2 account(s) failed (mm-gamma)" in err.getvalue()
    assert CANARY not in out.getvalue() + err.getvalue()
