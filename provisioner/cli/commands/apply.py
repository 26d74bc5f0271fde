"""`provision apply [PLAN]`: perform the missing steps, after confirmation or from a saved plan."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import threading
from pathlib import Path

from provisioner.apply import capabilities
from provisioner.apply.executor import AccountResult, StepHook, execute
from provisioner.apply.lock import (
    DEFAULT_TTL_SECONDS,
    MIN_TTL_SECONDS,
    AccountLocks,
    Busy,
    Lease,
    Takeover,
    lock_path,
)
from provisioner.apply.signals import Drain, Interrupted
from provisioner.cli.commands.plan import print_text
from provisioner.cli.runtime import Run, parse_shard, start_run
from provisioner.errors import ProvisionerError
from provisioner.facts import WorldFacts
from provisioner.failpoints import failpoint
from provisioner.plan.model import Plan, Step
from provisioner.plan.planner import PlanOptions
from provisioner.plan.render import render_text


def _refuse_unusable_signers(r: Run, facts: WorldFacts) -> None:
    """A signer that cannot sign for its account's address stops the run before any write."""
    bad = [f"{a.name}: {a.signer_error}" for a in facts.accounts if a.signer_error]
    if bad:
        listed = "; ".join(bad)
        raise ProvisionerError(
            r.redactor.redact(f"signer check failed ({listed}); nothing was done")
        )


def _load_saved(path: str) -> Plan:
    try:
        return Plan.from_dict(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise ProvisionerError(f"{path}: no such plan file") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ProvisionerError(
            f"{path}: not a plan saved by 'provision plan --out' ({exc})"
        ) from None


def run(args: argparse.Namespace) -> int:
    ttl = DEFAULT_TTL_SECONDS if args.lock_ttl is None else args.lock_ttl
    if ttl < MIN_TTL_SECONDS:
        raise ProvisionerError(f"--lock-ttl {ttl}: expected at least {MIN_TTL_SECONDS} seconds")
    drain = Drain()
    with drain.installed():
        try:
            return _apply(args, ttl, drain)
        except Interrupted as stop:
            print(
                f"Stopped on {drain.name} after {drain.since():.1f}s: {stop}; "
                "the leases are released, the next apply does the rest.",
                file=sys.stderr,
                flush=True,
            )
            if stop.abandoned:  # threads still in calls: exit now, not when they return
                sys.stdout.flush()
                os._exit(stop.exit_code)
            return stop.exit_code


def _apply(args: argparse.Namespace, ttl: int, drain: Drain) -> int:
    saved = _load_saved(args.plan_file) if args.plan_file else None
    if saved is not None and not args.target:
        args.target = [a.name for a in saved.accounts]
    r = start_run(args)
    options = PlanOptions(prune_api_keys=args.prune_api_keys)
    facts, plan = r.observe_and_plan(options)
    _refuse_unusable_signers(r, facts)
    if not _has_work(plan, facts) and saved is None:
        print_text(r.redactor.redact(render_text(plan, color=sys.stdout.isatty())))
        print("Nothing to apply.")
        return 0
    if saved is None and not args.auto_approve and not sys.stdin.isatty():
        print_text(r.redactor.redact(render_text(plan, color=False)))
        raise ProvisionerError(
            "no terminal to confirm on: pass --auto-approve or apply a plan saved with 'plan --out'; nothing was done"
        )
    # Guardrails before the first write (the lock is one), and again under the lock below.
    _check_guardrails(r, plan, args)
    _import_signing_meanwhile()
    state = r.manifest.vault.state_path
    shard = parse_shard(args.shard) if args.shard else None
    run_lock_path = lock_path(state, r.manifest.path, shard)
    capabilities.check(r.conn.vault, r.manifest, plan, facts, run_lock_path)
    # Locks only when there is work, so a converged apply writes nothing at all: this run's
    # (per manifest and shard), then one per account it has work for, so that overlapping
    # runs never work the same account; then look again under them, at the accounts held
    # (a saved plan: at all it names): another apply may have run in between.
    lock = Lease(r.conn.vault, run_lock_path, ttl)
    account_locks = AccountLocks(r.conn.vault, state, lock)
    heartbeat = lock.heartbeat(lambda message: print(f"warning: {message}", file=sys.stderr))
    try:
        lock.acquire(
            force_unlock=args.force_unlock,
            wait=drain.wait,
            on_wait=lambda message: print(f"  {message}", file=sys.stderr, flush=True),
        )
        heartbeat.start()
        _report_takeover(r, lock.takeover)
        failpoint("after_lock")
        busy = account_locks.acquire(
            _with_work(plan, facts), force_unlock=args.force_unlock, parallelism=r.parallelism
        )
        for took in account_locks.takeovers:
            _report_takeover(r, took)
        _report_busy(r, busy, saved is not None)
        failpoint("after_account_locks")
        keep = {a.name for a in plan.accounts} if saved else account_locks.held
        r.accounts = [a for a in r.accounts if a.name in keep]
        facts, plan = r.observe_and_plan(options, known=facts)
        if saved is not None:
            if saved.fingerprint != plan.fingerprint or saved.chain_id != plan.chain_id:
                raise ProvisionerError(
                    f"{args.plan_file} is stale: the live state changed since it was planned "
                    f"(facts {saved.fingerprint[:19]} then, {plan.fingerprint[:19]} now); run 'provision plan --out' again"
                )
            plan = saved  # the facts are the same, so the approved plan is still exact
        print_text(r.redactor.redact(render_text(plan, color=sys.stdout.isatty())))
        if not _has_work(plan, facts):
            print("Nothing to apply.")
            return int(bool(busy))  # what others hold is not done yet
        _check_guardrails(r, plan, args)
        if saved is None and not args.auto_approve:
            answer = input("Apply these steps? Only 'yes' is accepted: ")
            if answer.strip() != "yes":
                print("Apply cancelled.")
                return 1
        drain.begin_steps()
        results = execute(
            r.conn,
            plan,
            parallelism=r.parallelism,
            on_step=_progress(r),
            fence=lambda name: lambda: account_locks.check(name),
            drain=drain,
        )
        code = max(_report(r, results), int(bool(busy)))
        if drain.requested:
            raise drain.interrupted(
                _remaining(results), abandoned=any(res.in_flight for res in results)
            )
        return code
    finally:
        heartbeat.stop()
        account_locks.release(parallelism=r.parallelism)
        lock.release()


def _remaining(results: list[AccountResult]) -> str:
    """What a stopped run leaves for the next: counts, and the accounts it left mid-way."""
    left = [res for res in results if res.not_started or res.in_flight]
    steps = sum(len(res.not_started) for res in left)
    flight = [f"{res.name} ({res.in_flight})" for res in results if res.in_flight]
    text = f"{steps} step(s) of {len(left)} account(s) not started"
    if flight:
        text += (
            f", abandoned in flight: {', '.join(flight)} (journaled; the next apply settles them)"
        )
    return text


def _import_signing_meanwhile() -> None:
    """Import dydx3 (what the steps sign with) while the locks are taken and the accounts looked
    at again: it takes about a second, mostly web3 and sympy, and otherwise the first steps of
    every account would wait for it. A failure here is left to the step that imports it again."""

    def load() -> None:
        with contextlib.suppress(Exception):  # the steps import it again, and report
            importlib.import_module("provisioner.clients.dydx_eth")

    threading.Thread(target=load, name="import-dydx3", daemon=True).start()


def _has_work(plan: Plan, facts: WorldFacts) -> bool:
    s = plan.summary()
    return bool(s.add or s.change or s.destroy) or any(a.unsettled for a in facts.accounts)


def _with_work(plan: Plan, facts: WorldFacts) -> list[str]:
    """The accounts apply will touch: a step to run, or a journal to settle."""
    unsettled = {a.name for a in facts.accounts if a.unsettled}
    return [
        a.name for a in plan.accounts if a.name in unsettled or any(not s.blocked for s in a.steps)
    ]


def _report_takeover(r: Run, took: Takeover | None) -> None:
    if took is not None:
        print(r.redactor.redact(f"  {took.describe()}"), file=sys.stderr)


def _report_busy(r: Run, busy: dict[str, Busy], saved: bool) -> None:
    """Accounts another apply is working on are left to it; a saved plan is all or nothing."""
    for name, other in sorted(busy.items()):
        print(r.redactor.redact(f"  {name}: {other.message}"), file=sys.stderr)
    if busy and saved:
        raise ProvisionerError(
            f"{len(busy)} account(s) of the saved plan are being applied by another run; nothing was done"
        )


def _check_guardrails(r: Run, plan: Plan, args: argparse.Namespace) -> None:
    from decimal import Decimal, InvalidOperation

    from provisioner.money import format_usdc, from_base_units, to_base_units

    total = sum(
        int(s.params["amount"]) for s in plan.steps() if s.kind.value == "deposit" and not s.blocked
    )
    ceilings = []
    if r.manifest.max_deposit is not None:
        ceilings.append(("the manifest's max_deposit", to_base_units(r.manifest.max_deposit)))
    if args.max_deposit is not None:
        try:
            ceilings.append(("--max-deposit", to_base_units(Decimal(args.max_deposit))))
        except (InvalidOperation, ValueError) as exc:
            raise ProvisionerError(
                f"--max-deposit {args.max_deposit!r}: expected a USDC amount with at most 6 decimals ({exc})"
            ) from None
    for what, ceiling in ceilings:
        if total > ceiling:
            raise ProvisionerError(
                f"this run would deposit {format_usdc(from_base_units(total))} USDC, over {what} of {format_usdc(from_base_units(ceiling))}; nothing was done"
            )
    if r.manifest.network.chain_id == 1 and not sys.stdin.isatty() and not args.confirm_mainnet:
        raise ProvisionerError(
            "mainnet: a non-interactive apply needs --confirm-mainnet; nothing was done"
        )


def _progress(r: Run) -> StepHook:
    def hook(event: str, step: Step) -> None:
        done = "" if event == "start" else "done: "
        more = " ..." if event == "start" else ""
        line = f"  {step.account}: {done}{step.summary}{more}"
        print(r.redactor.redact(line), file=sys.stderr, flush=True)

    return hook


_LISTED = 20  # accounts named one by one in a stopped run's summary


def _report(r: Run, results: list[AccountResult]) -> int:
    failed = [res for res in results if res.failed]
    done = sum(len(res.done) for res in results)
    for res in results:
        for tx in res.tx_hashes:
            print(r.redactor.redact(f"  {res.name}: transaction {tx}"))
    for res in failed:
        print(
            r.redactor.redact(
                f"  {res.name}: FAILED at {res.failed}: {res.error}; skipped {len(res.skipped)} later step(s)"
            ),
            file=sys.stderr,
        )
    stopped = [res for res in results if res.not_started or res.in_flight]
    for res in stopped[:_LISTED]:
        flight = f"abandoned in flight: {res.in_flight}; " if res.in_flight else ""
        print(f"  {res.name}: {flight}not started: {len(res.not_started)} step(s)", file=sys.stderr)
    if len(stopped) > _LISTED:
        print(f"  ... and {len(stopped) - _LISTED} more account(s)", file=sys.stderr)
    verb = "stopped" if stopped else "complete"
    print(f"Apply {verb}: {done} step(s) done, {len(failed)} account(s) failed.")
    if failed:
        names = ", ".join(res.name for res in failed)
        print(
            f"error: {len(failed)} of {len(results)} account(s) failed ({names}); the others went on. "
            "Fix the cause and run apply again: it resumes where these stopped.",
            file=sys.stderr,
        )
    return 1 if failed else 0
