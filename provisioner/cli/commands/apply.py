"""`provision apply [PLAN]`: parse the arguments, render the run's events (apply/run.py does the rest)."""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal, InvalidOperation

from provisioner.apply.events import (
    AccountBusy,
    Cancelled,
    Event,
    Finished,
    LeaseTakenOver,
    LeaseTrouble,
    LeaseWaiting,
    NothingToApply,
    PlanReady,
    Reporter,
    StepDone,
    StepStarted,
)
from provisioner.apply.guardrails import MAINNET_CHAIN_ID
from provisioner.apply.lease import DEFAULT_TTL_SECONDS, MIN_TTL_SECONDS
from provisioner.apply.run import ApplyRequest, run_apply, targets
from provisioner.apply.signals import Drain, Interrupted
from provisioner.cli.commands.plan import print_text
from provisioner.cli.runtime import session_from_args
from provisioner.errors import ProvisionerError
from provisioner.manifest.model import Manifest
from provisioner.money import to_base_units
from provisioner.plan.model import Plan, PlanOptions
from provisioner.plan.render import render_text
from provisioner.plan.saved import load_saved_plan, saved_options
from provisioner.redact import Redactor
from provisioner.session import Session, parse_shard


def run(args: argparse.Namespace) -> int:
    ttl = DEFAULT_TTL_SECONDS if args.lock_ttl is None else args.lock_ttl
    if ttl < MIN_TTL_SECONDS:
        raise ProvisionerError(f"--lock-ttl {ttl}: expected at least {MIN_TTL_SECONDS} seconds")
    saved = load_saved_plan(args.plan_file) if args.plan_file else None
    options = PlanOptions(
        prune_api_keys=args.prune_api_keys, targets=tuple(args.target or ()), shard=args.shard
    )
    if saved is not None:
        options = saved_options(saved, options, args.plan_file)
    max_deposit = _max_deposit(args.max_deposit)
    interactive = sys.stdin.isatty()
    args.shard = options.shard
    session = session_from_args(args, targets(saved, list(options.targets)))
    request = ApplyRequest(
        options=options,
        saved=saved,
        saved_name=args.plan_file or "",
        auto_approve=args.auto_approve,
        interactive=interactive,
        max_deposit=max_deposit,
        confirm_mainnet=args.confirm_mainnet
        or typed_mainnet(session.manifest, interactive, max_deposit),
        force_unlock=args.force_unlock,
        shard=parse_shard(options.shard) if options.shard else None,
        lock_ttl=ttl,
    )
    return drained(session, request, TextReporter(session.redactor))


def drained(session: Session, request: ApplyRequest, report: Reporter) -> int:
    """``run_apply`` with SIGTERM/SIGINT draining the run (apply, and rotate, which is one)."""
    drain = Drain()
    with drain.installed():
        try:
            return run_apply(session, request, report=report, approve=ask, drain=drain)
        except Interrupted as stop:
            print(
                f"Stopped on {drain.name} after {drain.since():.1f}s: {stop}; "
                "the leases are released, the next apply does the rest.",
                file=sys.stderr,
                flush=True,
            )
            if stop.abandoned:  # threads are still in their calls: exit now, not when they return
                sys.stdout.flush()
                os._exit(stop.exit_code)
            return stop.exit_code


def typed_mainnet(manifest: Manifest, interactive: bool, max_deposit: int | None) -> bool:
    """On a terminal, mainnet asks for its own confirmation, whatever else was given (a saved
    plan, --auto-approve); without a ceiling it is refused anyway, so nothing is asked."""
    capped = manifest.max_deposit is not None or max_deposit is not None
    if manifest.network.chain_id != MAINNET_CHAIN_ID or not interactive or not capped:
        return False
    answer = input("This applies on Ethereum mainnet, with real funds. Type 'mainnet' to go on: ")
    return answer.strip() == "mainnet"


def _max_deposit(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return to_base_units(Decimal(text))
    except (InvalidOperation, ValueError) as exc:
        raise ProvisionerError(
            f"--max-deposit {text!r}: expected a USDC amount with at most 6 decimals ({exc})"
        ) from None


def ask(_plan: Plan) -> bool:
    return input("Apply these steps? Only 'yes' is accepted: ").strip() == "yes"


_LISTED = 20  # accounts named one by one in a stopped run's summary


class TextReporter:
    """The lines `provision apply` prints: the plan and results on stdout, progress on stderr."""

    def __init__(self, redactor: Redactor) -> None:
        self.redact = redactor.redact

    def __call__(self, event: Event) -> None:
        if isinstance(event, PlanReady):
            print_text(self.redact(render_text(event.plan, color=sys.stdout.isatty())))
        elif isinstance(event, NothingToApply):
            print("Nothing to apply.")
        elif isinstance(event, Cancelled):
            print("Apply cancelled.")
        elif isinstance(event, AccountBusy):
            print(self.redact(f"  {event.account}: {event.message}"), file=sys.stderr)
        elif isinstance(event, LeaseTakenOver):
            self._progress(f"  {event.takeover.describe()}")
        elif isinstance(event, LeaseWaiting):
            self._progress(f"  {event.message}")
        elif isinstance(event, LeaseTrouble):
            self._progress(f"warning: {event.message}")
        elif isinstance(event, StepStarted):
            self._progress(f"  {event.step.account}: {event.step.summary} ...")
        elif isinstance(event, StepDone):
            self._progress(f"  {event.step.account}: done: {event.step.summary}")
        elif isinstance(event, Finished):
            self._summary(event)
        # StepFailed: the summary names each failure once, at the end

    def _progress(self, line: str) -> None:
        print(self.redact(line), file=sys.stderr, flush=True)

    def _summary(self, finished: Finished) -> None:
        failed = finished.failed
        for res in finished.results:
            for tx in res.tx_hashes:
                print(self.redact(f"  {res.name}: transaction {tx}"))
        for res in failed:
            print(
                self.redact(
                    f"  {res.name}: FAILED at {res.failed}: {res.error}; skipped {len(res.skipped)} later step(s)"
                ),
                file=sys.stderr,
            )
        stopped = [res for res in finished.results if res.not_started or res.in_flight]
        for res in stopped[:_LISTED]:
            flight = f"abandoned in flight: {res.in_flight}; " if res.in_flight else ""
            self._progress(f"  {res.name}: {flight}not started: {len(res.not_started)} step(s)")
        if len(stopped) > _LISTED:
            self._progress(f"  ... and {len(stopped) - _LISTED} more account(s)")
        verb = "stopped" if stopped else "complete"
        print(f"Apply {verb}: {finished.steps_done} step(s) done, {len(failed)} account(s) failed.")
        if failed:
            names = ", ".join(res.name for res in failed)
            print(
                f"error: {len(failed)} of {len(finished.results)} account(s) failed ({names}); the others went on. "
                "Fix the cause and run apply again: it resumes where these stopped.",
                file=sys.stderr,
            )
