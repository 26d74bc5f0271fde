"""Run a plan: per account, steps in dependency order; accounts in parallel.

A step that fails stops its account (the steps after it are skipped) while the
other accounts go on; the run then exits 1 with a summary.

Two passes over the accounts. The first runs each account's steps up to and including
its first write at dYdX; the second, the rest. v3 allows an account 10 writes a
minute, counted from its first, so an account with more writes finishes no sooner
than a minute after that first one: opening every account's window before anyone's
later steps compete for the CPU and the network is what lets a run of many accounts
end about a minute after it starts, instead of a minute after the last account got
its turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from provisioner.apply.context import AccountContext
from provisioner.apply.fence import Fence, fenced
from provisioner.apply.signals import Drain
from provisioner.apply.steps import RUNNERS, settle_journal
from provisioner.connections import Connections
from provisioner.errors import ProvisionerError
from provisioner.failpoints import failpoint
from provisioner.journal import Journal
from provisioner.plan.model import AccountPlan, Plan, Step, StepKind


@dataclass
class AccountResult:
    name: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: str | None = None
    error: str | None = None
    tx_hashes: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)  # the run was stopped (a signal)
    in_flight: str | None = None  # abandoned mid-way at the drain deadline


def _unfenced() -> None:
    pass


StepHook = Callable[
    [str, Step], None
]  # (event, step): "start" / "done"; progress display and crash tests


# Steps that write at dYdX, spending the account's budget of 10 writes a minute
# (the default API key's step only derives and stores it).
_DYDX_WRITES = frozenset({StepKind.ONBOARD, StepKind.REPLACE_API_KEY, StepKind.DELETE_API_KEY})
_CHAIN = frozenset({StepKind.REGISTER, StepKind.APPROVE, StepKind.DEPOSIT})


def execute(
    conn: Connections,
    plan: Plan,
    *,
    parallelism: int = 8,
    on_step: StepHook = lambda _e, _s: None,
    fence: Callable[[str], Fence] = lambda _account: _unfenced,
    drain: Drain | None = None,
) -> list[AccountResult]:
    """Run the plan. ``fence(account)`` guards every write of that account's steps (see
    apply/fence.py); once ``drain`` is requested no step starts, and the steps in flight are
    waited for until its deadline, then abandoned (each result says what it left)."""
    state_path = conn.manifest.vault.state_path
    specs = {a.name: a for a in conn.manifest.accounts}
    journaled = _journaled(Journal(conn.vault, state_path))  # one listing, not one per account
    runs = []
    for acc in plan.accounts:
        if not (any(not s.blocked for s in acc.steps) or acc.name in journaled):
            continue
        guard = fence(acc.name)
        own = fenced(conn, guard)
        ctx = AccountContext(specs[acc.name], own, Journal(own.vault, state_path), fence=guard)
        runs.append(_AccountRun(ctx, acc, on_step, acc.name in journaled, drain))
    pool = ThreadPoolExecutor(max_workers=max(1, parallelism))
    finished = _all_done([pool.submit(r.open_window) for r in runs], drain) and _all_done(
        [pool.submit(r.finish) for r in runs], drain
    )
    # abandoned calls keep their threads until the process exits, which then comes at once
    pool.shutdown(wait=finished, cancel_futures=True)
    return [r.outcome() for r in runs]


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


def _journaled(journal: Journal) -> set[str]:
    return set(journal.accounts())


def _split(steps: Sequence[Step]) -> tuple[list[Step], list[Step]]:
    """The first pass: the steps through the account's first dYdX write, but for the chain
    steps among them, which nothing at dYdX depends on; the second pass: all the others."""
    for i, step in enumerate(steps):
        writes = step.kind in _DYDX_WRITES or (
            step.kind is StepKind.API_KEY and step.params.get("name") != "default"
        )
        if writes and not step.blocked:
            first = [s for s in steps[: i + 1] if s.kind not in _CHAIN]
            ids = {s.id for s in first}
            return first, [s for s in steps if s.id not in ids]
    return [], list(steps)


class _AccountRun:
    """One account's steps in order, run in two parts (see the module's docstring)."""

    def __init__(
        self,
        ctx: AccountContext,
        plan: AccountPlan,
        on_step: StepHook,
        journaled: bool,
        drain: Drain | None,
    ) -> None:
        self.ctx = ctx
        self.journaled = journaled  # the run's one listing showed entries for this account
        self.plan = plan
        self.on_step = on_step
        self.drain = drain
        self.result = AccountResult(plan.name)
        self.failed: set[str] = set()
        self.current: str | None = None
        self.stopped = False  # stopped before its journal was settled
        self.first, self.rest = _split(plan.steps)

    def outcome(self) -> AccountResult:
        self.result.in_flight = self.current
        self.result.tx_hashes = list(self.ctx.tx_hashes)
        return self.result

    def _stopping(self) -> bool:
        return self.drain is not None and self.drain.requested

    def open_window(self) -> None:
        if self._stopping():
            self.result.not_started += [s.id for s in self.plan.steps if not s.blocked]
            self.stopped = True
            return
        try:
            if self.journaled:  # entries appear only under the account's lock, which we hold
                self.current = "journal"
                settle_journal(self.ctx)
                self.current = None
        except Exception as exc:  # noqa: BLE001 - one account's failure must not stop the others
            self.current = None
            self.result.failed, self.result.error = "journal", _describe(self.ctx, exc)
            self.ctx.log(f"settling the journal failed: {self.result.error}")
            return
        failpoint("after_settle")
        self._run(self.first)

    def finish(self) -> None:
        if self.result.failed != "journal" and not self.stopped:
            self._run(self.rest)

    def _run(self, steps: Sequence[Step]) -> None:
        result = self.result
        for step in steps:
            if step.blocked or any(d in self.failed for d in step.depends_on) or result.failed:
                result.skipped.append(step.id)
                continue
            if self._stopping():
                result.not_started.append(step.id)
                continue
            self.on_step("start", step)
            self.current = step.id
            try:
                self.ctx.fence()  # a run that lost its lease starts nothing
                RUNNERS[step.kind](self.ctx, step)
            except Exception as exc:  # noqa: BLE001
                self.current = None
                self.failed.add(step.id)
                result.failed, result.error = step.id, _describe(self.ctx, exc)
                self.ctx.log(f"{step.id} failed: {result.error}")
                continue
            self.current = None
            failpoint(f"after_step:{step.kind.value}")
            self.on_step("done", step)
            result.done.append(step.id)


def _describe(ctx: AccountContext, exc: Exception) -> str:
    text = str(exc) if isinstance(exc, ProvisionerError) else f"{type(exc).__name__}: {exc}"
    return ctx.conn.redactor.redact(text)
