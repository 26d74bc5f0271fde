"""Run a plan: per account, steps in dependency order; accounts in parallel.

A step that fails stops its account (the steps after it are skipped) while the
other accounts go on; the run then exits 1 with a summary.

Two passes over the accounts. The first runs each account's steps up to and including
its first write at dYdX; the second, the rest. v3 allows an account 10 writes a
minute, counted from its first, so an account with more writes finishes no sooner
than a minute after that first one: opening every account's window before anyone's
later steps compete for the CPU and the network is what lets a run of many accounts
end about a minute after it starts, instead of a minute after the last account got
its turn. When every account has a thread of its own (no more accounts than
``parallelism``) and none has more writes than one window allows, no window is waited
for: each account goes on to its second part at once, and none of its chain steps waits
for the slowest account's onboarding.

In that case the transactions come first, for every account: an account whose chain steps
are sent (or will not be) waits until every other account's are before its other steps
(API keys) and its wait for confirmations. Those compete for the same CPUs as the
transactions still being prepared, and nothing waits for them: what ends the run is the
block that takes the last transaction and its confirmations, so it ends a block sooner when
the last one is sent before the next block instead of after it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from provisioner.apply import rotation
from provisioner.apply.budget import DepositBudget
from provisioner.apply.context import AccountContext
from provisioner.apply.events import (
    AccountResult,
    Reporter,
    StepDone,
    StepFailed,
    StepStarted,
    discard,
)
from provisioner.apply.fence import Fence, FencedConnections
from provisioner.apply.ports import ApplyConnections
from provisioner.apply.signals import Drain
from provisioner.apply.steps import RUNNERS as STEP_RUNNERS
from provisioner.apply.steps import settle_journal
from provisioner.apply.transactions import await_confirmations
from provisioner.errors import ProvisionerError
from provisioner.failpoints import failpoint
from provisioner.journal import HeldJournal, Journal
from provisioner.plan.model import AccountPlan, Plan, Step, StepKind
from provisioner.plan.params import ApiKeyParams

# Steps that write at dYdX, spending the account's budget of 10 writes a minute
# (the default API key's step only derives and stores it).
_DYDX_WRITES = frozenset(
    {
        StepKind.ONBOARD,
        StepKind.REPLACE_API_KEY,
        StepKind.DELETE_API_KEY,
        StepKind.ROTATE_API_KEY,
        StepKind.RETIRE_API_KEY,
    }
)
_CHAIN = frozenset({StepKind.REGISTER, StepKind.APPROVE, StepKind.DEPOSIT})
WRITES_PER_WINDOW = 10  # v3: an account's writes a minute


RUNNERS = {**STEP_RUNNERS, **rotation.RUNNERS}


def _unfenced() -> None:
    pass


def execute(
    conn: ApplyConnections,
    plan: Plan,
    *,
    parallelism: int = 8,
    report: Reporter = discard,
    fence: Callable[[str], Fence] = lambda _account: _unfenced,
    drain: Drain | None = None,
    budget: DepositBudget | None = None,
    taken_over: Collection[str] = (),
) -> list[AccountResult]:
    """Run ``plan``'s steps; ``report`` gets each step's start, end or failure as it happens.
    ``fence(account)`` guards every write of that account's steps (apply/fence.py). Once
    ``drain`` is requested no step starts; the steps in flight are waited for until its
    deadline, then abandoned (each result names what it did not start, and what it left).
    ``budget``: the run's deposit ceilings, charged by every deposit sent (one for all accounts).
    The caller holds each account's locks, its address's included (apply/lock.py): nobody else
    journals for its sender meanwhile, so its journal is read once (``HeldJournal``); but for
    the accounts in ``taken_over`` (a lock of theirs was taken from another run, which may
    still finish a write it began, or still be at work if unlocked by force): their journal
    is read again before every transaction, as without the address lock."""
    state_path = conn.manifest.vault.state_path
    budget = budget or DepositBudget()
    specs = {a.name: a for a in conn.manifest.accounts}
    chain_id = conn.manifest.network.chain_id
    named, senders = _journaled(Journal(conn.vault, state_path), chain_id)

    def journaled(name: str) -> bool:
        return name in named or specs[name].address.lower() in senders

    runs = []
    for acc in plan.accounts:
        if not (any(not s.blocked for s in acc.steps) or journaled(acc.name)):
            continue
        guard = fence(acc.name)
        own = FencedConnections.around(conn, guard)
        spec = specs[acc.name]
        # the run holds the account's sender (apply/lock.py), and has just listed the journal
        known = () if journaled(acc.name) else [(chain_id, spec.address, spec.name)]
        journal = (
            Journal(own.vault, state_path)
            if acc.name in taken_over
            else HeldJournal(own.vault, state_path, empty=known)
        )
        ctx = AccountContext(spec, own, journal, fence=guard, budget=budget)
        runs.append(_AccountRun(ctx, acc, report, journaled(acc.name), drain))
    pool = ThreadPoolExecutor(max_workers=max(1, parallelism))
    if len(runs) <= parallelism and not any(r.waits_for_window for r in runs):
        # a thread each: an account waiting for the others' transactions holds no one's thread
        sent = TransactionsSent(len(runs), drain)
        for r in runs:
            r.sent = sent
        finished = _all_done([pool.submit(r.whole) for r in runs], drain)
    else:
        finished = _all_done([pool.submit(r.open_window) for r in runs], drain) and _all_done(
            [pool.submit(r.finish) for r in runs], drain
        )
    # abandoned calls keep their threads until the process exits, which then comes at once
    pool.shutdown(wait=finished, cancel_futures=True)
    return [r.result() for r in runs]


def _journaled(journal: Journal, chain_id: int) -> tuple[set[str], set[str]]:
    """Account names with entries of their own, and sender addresses with transactions."""
    return set(journal.accounts()), journal.senders(chain_id)


def _all_done(futures: list[Future[None]], drain: Drain | None) -> bool:
    """Wait for ``futures``; False when the drain's deadline came first."""
    pending = set(futures)
    while pending:
        _done, pending = wait(pending, timeout=None if drain is None else 0.2)
        if drain is not None and pending and drain.left() <= 0:
            return False
    for f in futures:
        f.result()
    return True


def _writes_at_dydx(step: Step) -> bool:
    if step.kind in _DYDX_WRITES:
        return True
    return isinstance(step.params, ApiKeyParams) and not step.params.is_default


def _split(steps: Sequence[Step]) -> tuple[list[Step], list[Step]]:
    """The first pass: the steps through the account's first dYdX write, but for the chain
    steps among them, which nothing at dYdX depends on; the second pass: all the others."""
    for i, step in enumerate(steps):
        if _writes_at_dydx(step) and not step.blocked:
            first = [s for s in steps[: i + 1] if s.kind not in _CHAIN]
            ids = {s.id for s in first}
            return first, [s for s in steps if s.id not in ids]
    return [], list(steps)


class TransactionsSent:
    """Open once every account of the run has sent its transactions, or will not send them
    (it failed, was stopped, or has none left): see the module's docstring. A drain opens it
    too, so no account waits here once the run is asked to stop."""

    def __init__(self, accounts: int, drain: Drain | None = None) -> None:
        self._left = accounts
        self._drain = drain
        self._changed = threading.Condition()

    def arrive(self) -> None:
        with self._changed:
            self._left -= 1
            if self._left <= 0:
                self._changed.notify_all()

    def wait(self) -> None:
        with self._changed:
            while self._left > 0 and not (self._drain is not None and self._drain.requested):
                self._changed.wait(None if self._drain is None else 0.2)


@dataclass
class _Progress:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: str | None = None
    error: str | None = None
    not_started: list[str] = field(default_factory=list)  # the run was stopped (a signal)
    current: str | None = None  # the step (or "journal") in flight


class _AccountRun:
    """One account's steps in order, run in two parts (see the module's docstring)."""

    def __init__(
        self,
        ctx: AccountContext,
        plan: AccountPlan,
        report: Reporter,
        journaled: bool,
        drain: Drain | None,
    ) -> None:
        self.ctx = ctx
        self.journaled = journaled  # the run's one listing showed entries for this account
        self.plan = plan
        self.report = report
        self.drain = drain
        self.stopped = False  # stopped before its journal was settled
        self.progress = _Progress()
        self.failed_steps: set[str] = set()
        self.first, self.rest = _split(plan.steps)
        self.sent: TransactionsSent | None = None  # set when the run holds its other steps
        self._chain_left = {s.id for s in plan.steps if s.kind in _CHAIN}
        self._arrived = False

    def _transactions_sent(self) -> None:
        """This account has no transaction left to send: tell the others, once."""
        if self.sent is not None and not self._arrived:
            self._arrived = True
            self.sent.arrive()

    def _after_every_account_sent(self) -> None:
        """Before a step that is not a transaction, or the wait for confirmations, once this
        account's transactions are sent: wait until every account's are."""
        if self.sent is not None and not self._chain_left:
            self._transactions_sent()
            self.sent.wait()

    def result(self) -> AccountResult:
        p = self.progress
        return AccountResult(
            name=self.plan.name,
            done=tuple(p.done),
            skipped=tuple(p.skipped),
            unchanged=tuple(p.unchanged),
            failed=p.failed,
            error=p.error,
            tx_hashes=tuple(self.ctx.tx_hashes),
            not_started=tuple(p.not_started),
            in_flight=p.current,
        )

    def _stopping(self) -> bool:
        return self.drain is not None and self.drain.requested

    def open_window(self) -> None:
        p = self.progress
        if self._stopping():
            p.not_started += [s.id for s in self.plan.steps if not s.blocked]
            self.stopped = True
            return
        try:
            if self.journaled:  # entries appear only under the account's lock, which we hold
                p.current = "journal"
                settle_journal(self.ctx)
                p.current = None
        except Exception as exc:  # noqa: BLE001 - one account's failure must not stop the others
            p.current = None
            self.progress.failed, self.progress.error = "journal", _describe(self.ctx, exc)
            self.ctx.log(f"settling the journal failed: {self.progress.error}")
            self.report(StepFailed(self.plan.name, None, self.progress.error))
            return
        failpoint("after_settle")
        self._run(self.first)

    @property
    def waits_for_window(self) -> bool:
        """More dYdX writes than v3 allows an account in a minute: one will wait for its window."""
        return sum(1 for s in self.plan.steps if _writes_at_dydx(s)) > WRITES_PER_WINDOW

    def whole(self) -> None:
        try:
            self.open_window()
            self.finish()
        finally:  # however it ended, the others wait for this account no longer
            self._transactions_sent()

    def finish(self) -> None:
        if self.progress.failed != "journal" and not self.stopped:
            self._run(self.rest)
        self._chain_left.clear()  # what was not sent by now will not be
        self._after_every_account_sent()
        try:  # also after a failed step: what was sent is settled now, not left to the next run
            await_confirmations(self.ctx)
        except Exception as exc:  # noqa: BLE001 - the journal keeps what is not final
            p = self.progress
            error = _describe(self.ctx, exc)
            if not p.failed:
                p.failed, p.error = "confirmations", error
                self.report(StepFailed(self.plan.name, None, error))
            self.ctx.log(f"waiting for confirmations failed: {error}")

    def _run(self, steps: Sequence[Step]) -> None:
        p = self.progress
        for step in steps:
            if step.blocked or any(d in self.failed_steps for d in step.depends_on) or p.failed:
                p.skipped.append(step.id)
                self._chain_left.discard(step.id)
                continue
            if step.kind not in _CHAIN:
                self._after_every_account_sent()
            if self._stopping():
                p.not_started.append(step.id)
                continue
            self.report(StepStarted(step))
            p.current = step.id
            try:
                self.ctx.fence()  # a run that lost its lease starts nothing
                outcome = RUNNERS[step.kind](self.ctx, step)
            except Exception as exc:  # noqa: BLE001
                self._chain_left.discard(step.id)
                p.current = None
                self.failed_steps.add(step.id)
                p.failed, p.error = step.id, _describe(self.ctx, exc)
                self.ctx.log(f"{step.id} failed: {p.error}")
                self.report(StepFailed(self.plan.name, step, p.error))
                continue
            p.current = None
            self._chain_left.discard(step.id)
            failpoint(f"after_step:{step.kind.value}")
            self.report(StepDone(step, outcome))
            (p.done if outcome.changed else p.unchanged).append(step.id)


def _describe(ctx: AccountContext, exc: Exception) -> str:
    text = str(exc) if isinstance(exc, ProvisionerError) else f"{type(exc).__name__}: {exc}"
    return ctx.conn.redactor.redact(text)
