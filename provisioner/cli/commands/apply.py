"""`provision apply [PLAN]`: perform the missing steps, after confirmation or from a saved plan."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from provisioner.apply import capabilities
from provisioner.apply.budget import DepositBudget
from provisioner.apply.executor import AccountResult, StepHook, execute
from provisioner.apply.lock import AccountLocks, ApplyLock, LockInfo, lock_path
from provisioner.cli.commands.plan import print_text
from provisioner.cli.runtime import Run, parse_shard, start_run
from provisioner.errors import ProvisionerError
from provisioner.facts import WorldFacts
from provisioner.failpoints import failpoint
from provisioner.plan.model import Plan, PlanOptions, Step
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


def _options(args: argparse.Namespace, saved: Plan | None) -> PlanOptions:
    """The run's options: the command line's; with a saved plan, the plan's, and a command
    line that asks for something else is refused (what was reviewed is what runs)."""
    asked = PlanOptions(
        prune_api_keys=args.prune_api_keys, targets=tuple(args.target or ()), shard=args.shard
    )
    if saved is None:
        return asked
    given = PlanOptions(
        prune_api_keys=args.prune_api_keys or saved.options.prune_api_keys,
        targets=asked.targets or saved.options.targets,
        shard=asked.shard or saved.options.shard,
    )
    differs = given.differences(saved.options)
    if differs:
        raise ProvisionerError(
            f"{args.plan_file} was planned with other options than this apply: {differs[0]} "
            f"(the plan: {_shown(saved.options, differs[0])}; now: {_shown(given, differs[0])}); "
            "nothing was done: plan again with the options to apply, or apply without them"
        )
    return saved.options


def _shown(options: PlanOptions, flag: str) -> str:
    if flag == "--prune-api-keys":
        return "with it" if options.prune_api_keys else "without it"
    if flag == "--target":
        return ", ".join(options.targets) or "every account"
    return options.shard or "no shard"


def check_saved(path: str, saved: Plan, fresh: Plan) -> None:
    """A saved plan is applied only if planning again now gives exactly its steps, parameters
    and options; else refused, naming the first difference. Nothing of the file is executed:
    the run executes (and prints) the fresh plan, equal to it."""
    if saved.fingerprint != fresh.fingerprint or saved.chain_id != fresh.chain_id:
        raise ProvisionerError(
            f"{path} is stale: the live state changed since it was planned "
            f"(facts {saved.fingerprint[:19]} then, {fresh.fingerprint[:19]} now); run 'provision plan --out' again"
        )
    difference = _first_difference(saved, fresh)
    if difference:
        raise ProvisionerError(
            f"{path} is not what planning again gives now: {difference}; nothing was done "
            "(was the file edited?): run 'provision plan --out' again and review it"
        )


def _first_difference(saved: Plan, fresh: Plan) -> str | None:
    if saved.options != fresh.options:
        return f"options {saved.options} in the plan, {fresh.options} now"
    if saved.manifest != fresh.manifest or saved.network != fresh.network:
        return f"manifest {saved.manifest} on {saved.network} in the plan, {fresh.manifest} on {fresh.network} now"
    names = ([a.name for a in saved.accounts], [a.name for a in fresh.accounts])
    if names[0] != names[1]:
        return f"accounts {', '.join(names[0])} in the plan, {', '.join(names[1])} now"
    for old_acc, new_acc in zip(saved.accounts, fresh.accounts, strict=True):
        if old_acc.address != new_acc.address:
            return f"{old_acc.name}: address {old_acc.address} in the plan, {new_acc.address} now"
        old_ids, new_ids = [s.id for s in old_acc.steps], [s.id for s in new_acc.steps]
        if old_ids != new_ids:
            return f"{old_acc.name}: steps {', '.join(old_ids) or 'none'} in the plan, {', '.join(new_ids) or 'none'} now"
        for old, new in zip(old_acc.steps, new_acc.steps, strict=True):
            for name in sorted(set(old.params) | set(new.params), key=_param_order(old, new)):
                if old.params.get(name) != new.params.get(name):
                    return (
                        f"step {old.id}: {name} is {old.params.get(name)} in the plan, "
                        f"{new.params.get(name)} now"
                    )
            for name in ("kind", "action", "summary", "reason", "depends_on", "blocked"):
                if getattr(old, name) != getattr(new, name):
                    return f"step {old.id}: {name} is {getattr(old, name)!r} in the plan, {getattr(new, name)!r} now"
    return None


def _param_order(old: Step, new: Step) -> Callable[[str], int]:
    order = list(old.params) + [k for k in new.params if k not in old.params]
    return order.index


def run(args: argparse.Namespace) -> int:
    saved = _load_saved(args.plan_file) if args.plan_file else None
    options = _options(args, saved)
    args.target, args.shard = list(options.targets), options.shard
    r = start_run(args)
    facts, plan = r.observe_and_plan(options)
    if saved is not None:
        check_saved(args.plan_file, saved, plan)  # before the first write: the lock
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
    lock = ApplyLock(r.conn.vault, run_lock_path)
    run_lock = lock.acquire(force_unlock=args.force_unlock)
    failpoint("after_lock")
    account_locks = AccountLocks(r.conn.vault, state, run_lock)
    try:
        busy = account_locks.acquire(
            _with_work(plan, facts), force_unlock=args.force_unlock, parallelism=r.parallelism
        )
        _report_busy(r, busy, saved is not None)
        failpoint("after_account_locks")
        keep = {a.name for a in plan.accounts} if saved else account_locks.held
        r.accounts = [a for a in r.accounts if a.name in keep]
        facts, plan = r.observe_and_plan(options, known=facts)
        if saved is not None:
            check_saved(args.plan_file, saved, plan)  # what runs below is this fresh plan
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
        results = execute(
            r.conn,
            plan,
            parallelism=r.parallelism,
            on_step=_progress(r),
            budget=DepositBudget(_ceilings(r, args)),
        )
        return max(_report(r, results), int(bool(busy)))
    finally:
        account_locks.release(parallelism=r.parallelism)
        lock.release()


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


def _report_busy(r: Run, busy: dict[str, LockInfo], saved: bool) -> None:
    """Accounts another apply is working on are left to it; a saved plan is all or nothing."""
    for name, other in sorted(busy.items()):
        hint = f"; if its holder is gone, run again with --force-unlock {other.id}"
        print(
            r.redactor.redact(
                f"  {name}: left alone, another apply works on it: {other.describe()}{hint}"
            ),
            file=sys.stderr,
        )
    if busy and saved:
        raise ProvisionerError(
            f"{len(busy)} account(s) of the saved plan are being applied by another run; nothing was done"
        )


def _ceilings(r: Run, args: argparse.Namespace) -> tuple[tuple[str, int], ...]:
    """The run's deposit ceilings in base units: the manifest's max_deposit, --max-deposit."""
    from decimal import Decimal, InvalidOperation

    from provisioner.money import to_base_units

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
    return tuple(ceilings)


def _check_guardrails(r: Run, plan: Plan, args: argparse.Namespace) -> None:
    from provisioner.money import format_usdc, from_base_units

    total = sum(
        int(s.params["amount"]) for s in plan.steps() if s.kind.value == "deposit" and not s.blocked
    )
    ceilings = _ceilings(r, args)
    for what, ceiling in ceilings:
        if total > ceiling:
            raise ProvisionerError(
                f"this run would deposit {format_usdc(from_base_units(total))} USDC, over {what} of {format_usdc(from_base_units(ceiling))}; nothing was done"
            )
    if r.manifest.network.chain_id == 1:
        _confirm_mainnet(args, bool(ceilings))


def _confirm_mainnet(args: argparse.Namespace, capped: bool) -> None:
    """Every apply on mainnet: a deposit ceiling, and a confirmation (--confirm-mainnet, or typed
    on a terminal), saved plans and --auto-approve included. Asked once per run."""
    if not capped:
        raise ProvisionerError(
            "mainnet: an apply needs a deposit ceiling (the manifest's max_deposit, or --max-deposit); "
            "nothing was done"
        )
    if args.confirm_mainnet or getattr(args, "mainnet_confirmed", False):
        return
    if not sys.stdin.isatty():
        raise ProvisionerError(
            "mainnet: a non-interactive apply needs --confirm-mainnet; nothing was done"
        )
    answer = input("This applies on Ethereum mainnet, with real funds. Type 'mainnet' to go on: ")
    if answer.strip() != "mainnet":
        raise ProvisionerError("mainnet: not confirmed; nothing was done")
    args.mainnet_confirmed = True


def _progress(r: Run) -> StepHook:
    def hook(event: str, step: Step) -> None:
        done = "" if event == "start" else "done: "
        more = " ..." if event == "start" else ""
        line = f"  {step.account}: {done}{step.summary}{more}"
        print(r.redactor.redact(line), file=sys.stderr, flush=True)

    return hook


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
    print(f"Apply complete: {done} step(s) done, {len(failed)} account(s) failed.")
    if failed:
        names = ", ".join(res.name for res in failed)
        print(
            f"error: {len(failed)} of {len(results)} account(s) failed ({names}); the others went on. "
            "Fix the cause and run apply again: it resumes where these stopped.",
            file=sys.stderr,
        )
    return 1 if failed else 0
