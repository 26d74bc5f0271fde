"""``apply``: everything between a parsed command line and the rendered result.

One way through, each phase a function of what the one before produced:

1. look: observe the selected accounts, plan (``session.look``);
2. refuse early: unusable signers, no one to approve, guardrails, missing Vault
   capabilities; all before the first write (taking a lock is one);
3. lock: this run's lease, then one lock per account with work (``_locks``), renewed by a
   heartbeat until the end; accounts another run holds are reported and left to it;
4. look again under the locks, at the accounts held, and hold a saved plan to the facts
   it was made from (the stale-plan check);
5. guardrails again, approval, execute (every write fenced by the account's lock, no new
   step once a signal asked to drain), summary.

Nothing here prints: every outcome goes to the ``Reporter`` as an event
(apply/events.py). A run stopped by a signal raises ``Interrupted`` once its leases are
released (apply/signals.py).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from provisioner.apply import capabilities, guardrails
from provisioner.apply.budget import DepositBudget
from provisioner.apply.events import (
    AccountBusy,
    Cancelled,
    Finished,
    LeaseTakenOver,
    LeaseTrouble,
    LeaseWaiting,
    NothingToApply,
    PlanReady,
    Reporter,
)
from provisioner.apply.executor import execute
from provisioner.apply.lease import DEFAULT_TTL_SECONDS, Lease
from provisioner.apply.lock import AccountLocks, Busy, lock_path, sender_locks
from provisioner.apply.signals import Drain
from provisioner.errors import ProvisionerError
from provisioner.facts import WorldFacts
from provisioner.failpoints import failpoint
from provisioner.money import to_base_units
from provisioner.plan.model import Plan, PlanOptions
from provisioner.plan.saved import StalePlan, check_saved, check_saved_time
from provisioner.session import Session, Shard, look

__all__ = ["StalePlan", "ApplyRequest", "run_apply"]

Approve = Callable[[Plan], bool]
"""Asks a person whether to apply ``plan``; only a clear yes is True."""


class ApprovalUnavailable(ProvisionerError):
    pass


class AccountsBusy(ProvisionerError):
    pass


@dataclass(frozen=True)
class ApplyRequest:
    """What the command line asked for, parsed."""

    options: PlanOptions = PlanOptions()
    saved: Plan | None = None  # a plan saved by ``plan --out``: applied exactly, or refused
    # (``options`` are then the plan's own: see plan/saved.py, saved_options)
    saved_name: str = ""  # its file, for messages
    auto_approve: bool = False
    interactive: bool = False  # a person is there to answer (stdin is a terminal)
    max_deposit: int | None = None  # base units (``--max-deposit``)
    max_deposit_source: str = "--max-deposit"  # who set it, as messages name it
    confirm_mainnet: bool = False
    force_unlock: str | None = None
    shard: Shard | None = None
    lock_ttl: int = DEFAULT_TTL_SECONDS  # seconds a lease holds unless renewed (``--lock-ttl``)


def targets(saved: Plan | None, asked: Collection[str]) -> list[str]:
    """The accounts to select: those asked for, else all a saved plan names, else all."""
    if asked or saved is None:
        return list(asked)
    return [a.name for a in saved.accounts]


def run_apply(
    session: Session,
    request: ApplyRequest,
    *,
    report: Reporter,
    approve: Approve,
    drain: Drain | None = None,
) -> int:
    """Carry out the plan for ``session``'s accounts. The exit status: 0 when everything asked
    for is done (or nothing was to do); 1 when a step failed, the person declined, or accounts
    were left to another run (they are not done yet). ``drain``: the run's stop flag, set by
    SIGTERM / SIGINT (``Drain.installed``); a run it stopped raises ``Interrupted``."""
    drain = drain or Drain()
    _import_signing_meanwhile()
    saved = request.saved
    if saved is not None:
        check_saved_time(request.saved_name, saved, time.time())
    at = saved.observed_at if saved is not None else None  # a saved plan: as reviewed
    facts, plan = look(session, request.options, at=at)
    if saved is not None:  # before the first write: the lock is one
        check_saved(request.saved_name, saved, plan)
    guardrails.refuse_unusable_signers(facts, session.redactor)
    if not has_work(plan, facts) and saved is None:
        report(PlanReady(plan))
        report(NothingToApply())
        return 0
    if saved is None and not request.auto_approve and not request.interactive:
        report(PlanReady(plan))
        raise ApprovalUnavailable(
            "no terminal to confirm on: pass --auto-approve or apply a plan saved with 'plan --out'; nothing was done"
        )
    _check_guardrails(session, plan, request)
    manifest = session.manifest
    run_lock = lock_path(manifest.vault.state_path, manifest.path, request.shard)
    capabilities.check(session.conn.vault, manifest, plan, facts, run_lock)
    with _locks(session, run_lock, with_work(plan, facts), request, report, drain) as locks:
        busy = locks.busy
        for name, other in sorted(busy.items()):
            report(AccountBusy(name, other.holder, other.message))
        if busy and saved is not None:
            raise AccountsBusy(
                f"{len(busy)} account(s) of the saved plan are being applied by another run; nothing was done"
            )
        failpoint("after_account_locks")
        session = session.only({a.name for a in plan.accounts} if saved else locks.accounts.held)
        facts, plan = look(session, request.options, known=facts, at=at)
        if saved is not None:  # what runs (and is shown) below is this fresh plan, equal to it
            check_saved(request.saved_name, saved, plan)
        report(PlanReady(plan))
        if not has_work(plan, facts):
            report(NothingToApply())
            return int(bool(busy))
        _check_guardrails(session, plan, request)
        if saved is None and not request.auto_approve and not approve(plan):
            report(Cancelled())
            return 1
        finished = _execute(
            session,
            plan,
            report,
            locks.accounts,
            drain,
            busy=len(busy),
            budget=_budget(session, request),
        )
    if drain.requested:
        raise drain.interrupted(_remaining(finished), abandoned=finished.abandoned)
    return max(int(bool(finished.failed)), int(bool(busy)))


def has_work(plan: Plan, facts: WorldFacts) -> bool:
    """A step to run, or a journal an interrupted run left to settle."""
    s = plan.summary()
    return bool(s.add or s.change or s.destroy) or any(a.unsettled for a in facts.accounts)


def with_work(plan: Plan, facts: WorldFacts) -> list[str]:
    """The accounts apply will touch: a step to run, or a journal to settle."""
    unsettled = {a.name for a in facts.accounts if a.unsettled}
    return [
        a.name for a in plan.accounts if a.name in unsettled or any(not s.blocked for s in a.steps)
    ]


@dataclass(frozen=True)
class _Held:
    accounts: AccountLocks
    busy: dict[str, Busy]  # accounts another live run holds


@contextlib.contextmanager
def _locks(
    session: Session,
    run_lock: str,
    accounts: list[str],
    request: ApplyRequest,
    report: Reporter,
    drain: Drain,
) -> Iterator[_Held]:
    """This run's lease, then a lock per account it has work for, so that overlapping runs
    never work the same account; renewed by a heartbeat until they are released. Taken only
    when there is work, so a converged apply writes nothing. A live lease in the way is
    watched until it expires or is renewed (``Lease.acquire``)."""
    vault = session.conn.vault
    lease = Lease(vault, run_lock, request.lock_ttl)
    account_locks = AccountLocks(
        vault, session.manifest.vault.state_path, lease, sender_locks(session.manifest)
    )
    heartbeat = lease.heartbeat(lambda message: report(LeaseTrouble(message)))
    try:
        lease.acquire(
            force_unlock=request.force_unlock,
            wait=drain.wait,
            on_wait=lambda message: report(LeaseWaiting(message)),
        )
        heartbeat.start()
        if lease.takeover is not None:
            report(LeaseTakenOver(lease.takeover))
        failpoint("after_lock")
        busy = account_locks.acquire(
            accounts, force_unlock=request.force_unlock, parallelism=session.parallelism
        )
        for took in account_locks.takeovers:
            report(LeaseTakenOver(took))
        yield _Held(account_locks, busy)
    finally:
        heartbeat.stop()
        account_locks.release(parallelism=session.parallelism)
        lease.release()


def _budget(session: Session, request: ApplyRequest) -> DepositBudget:
    """The run's deposit ceilings, held by every deposit sent (rebroadcasts included)."""
    ceilings = []
    if session.manifest.max_deposit is not None:
        ceilings.append(("the manifest's max_deposit", to_base_units(session.manifest.max_deposit)))
    if request.max_deposit is not None:
        ceilings.append((request.max_deposit_source, request.max_deposit))
    return DepositBudget(tuple(ceilings))


def _execute(
    session: Session,
    plan: Plan,
    report: Reporter,
    locks: AccountLocks,
    drain: Drain,
    *,
    busy: int,
    budget: DepositBudget,
) -> Finished:
    drain.begin_steps()
    results = execute(
        session.conn,
        plan,
        parallelism=session.parallelism,
        report=report,
        fence=lambda account: lambda: locks.check(account),
        drain=drain,
        budget=budget,
        taken_over=locks.taken_over,
    )
    finished = Finished(tuple(results), busy=busy)
    report(finished)
    return finished


def _remaining(finished: Finished) -> str:
    """What a stopped run leaves to the next, in a line."""
    left = [res for res in finished.results if res.not_started or res.in_flight]
    steps = sum(len(res.not_started) for res in left)
    text = f"{steps} step(s) of {len(left)} account(s) not started"
    flight = [f"{res.name} ({res.in_flight})" for res in finished.results if res.in_flight]
    if flight:
        text += f"; abandoned in flight, journaled for the next apply: {', '.join(flight)}"
    return text


def _check_guardrails(session: Session, plan: Plan, request: ApplyRequest) -> None:
    guardrails.check(
        session.manifest,
        plan,
        max_deposit=request.max_deposit,
        interactive=request.interactive,
        confirm_mainnet=request.confirm_mainnet,
    )


SIGNING_MODULES = ("provisioner.signers.local", "provisioner.clients.dydx_eth")


def _import_signing_meanwhile() -> None:
    """Import what the look's signer checks and the steps sign with while the first look waits
    for Vault, dYdX and the chain: it is CPU alone (eth_account, and dydx3 with web3 and sympy:
    about a second), which the look's round trips leave idle, and otherwise the first steps of
    every account would wait for it. A failure here is left to whoever imports it again."""

    def load() -> None:
        for name in SIGNING_MODULES:
            with contextlib.suppress(Exception):  # imported again where needed, and reported
                importlib.import_module(name)

    threading.Thread(target=load, name="import-dydx3", daemon=True).start()
