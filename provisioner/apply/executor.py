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

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

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
from provisioner.apply.ports import ApplyConnections
from provisioner.apply.steps import RUNNERS, settle_journal
from provisioner.apply.transactions import await_confirmations
from provisioner.errors import ProvisionerError
from provisioner.failpoints import failpoint
from provisioner.journal import Journal
from provisioner.plan.model import AccountPlan, Plan, Step, StepKind
from provisioner.plan.params import ApiKeyParams

# Steps that write at dYdX, spending the account's budget of 10 writes a minute
# (the default API key's step only derives and stores it).
_DYDX_WRITES = frozenset({StepKind.ONBOARD, StepKind.REPLACE_API_KEY, StepKind.DELETE_API_KEY})
_CHAIN = frozenset({StepKind.REGISTER, StepKind.APPROVE, StepKind.DEPOSIT})


def execute(
    conn: ApplyConnections,
    plan: Plan,
    *,
    parallelism: int = 8,
    report: Reporter = discard,
    budget: DepositBudget | None = None,
) -> list[AccountResult]:
    """Run ``plan``'s steps; ``report`` gets each step's start, end or failure as it happens.
    ``budget``: the run's deposit ceilings, charged by every deposit sent (one for all accounts)."""
    journal = Journal(conn.vault, conn.manifest.vault.state_path)
    budget = budget or DepositBudget()
    specs = {a.name: a for a in conn.manifest.accounts}
    named, senders = _journaled(journal, conn.manifest.network.chain_id)  # two listings in all

    def journaled(name: str) -> bool:
        return name in named or specs[name].address.lower() in senders

    runs = [
        _AccountRun(
            AccountContext(specs[acc.name], conn, journal, budget=budget),
            acc,
            report,
            journaled(acc.name),
        )
        for acc in plan.accounts
        if any(not s.blocked for s in acc.steps) or journaled(acc.name)
    ]
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        list(pool.map(_AccountRun.open_window, runs))
        list(pool.map(_AccountRun.finish, runs))
    return [r.result() for r in runs]


def _journaled(journal: Journal, chain_id: int) -> tuple[set[str], set[str]]:
    """Account names with entries of their own, and sender addresses with transactions."""
    return set(journal.accounts()), journal.senders(chain_id)


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


@dataclass
class _Progress:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: str | None = None
    error: str | None = None


class _AccountRun:
    """One account's steps in order, run in two parts (see the module's docstring)."""

    def __init__(
        self, ctx: AccountContext, plan: AccountPlan, report: Reporter, journaled: bool
    ) -> None:
        self.ctx = ctx
        self.journaled = journaled  # the run's one listing showed entries for this account
        self.plan = plan
        self.report = report
        self.progress = _Progress()
        self.failed_steps: set[str] = set()
        self.first, self.rest = _split(plan.steps)

    def result(self) -> AccountResult:
        p = self.progress
        return AccountResult(
            name=self.plan.name,
            done=tuple(p.done),
            skipped=tuple(p.skipped),
            failed=p.failed,
            error=p.error,
            tx_hashes=tuple(self.ctx.tx_hashes),
        )

    def open_window(self) -> None:
        try:
            if self.journaled:  # entries appear only under the account's lock, which we hold
                settle_journal(self.ctx)
        except Exception as exc:  # noqa: BLE001 - one account's failure must not stop the others
            self.progress.failed, self.progress.error = "journal", _describe(self.ctx, exc)
            self.ctx.log(f"settling the journal failed: {self.progress.error}")
            self.report(StepFailed(self.plan.name, None, self.progress.error))
            return
        failpoint("after_settle")
        self._run(self.first)

    def finish(self) -> None:
        if self.progress.failed != "journal":
            self._run(self.rest)
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
                continue
            self.report(StepStarted(step))
            try:
                RUNNERS[step.kind](self.ctx, step)
            except Exception as exc:  # noqa: BLE001
                self.failed_steps.add(step.id)
                p.failed, p.error = step.id, _describe(self.ctx, exc)
                self.ctx.log(f"{step.id} failed: {p.error}")
                self.report(StepFailed(self.plan.name, step, p.error))
                continue
            failpoint(f"after_step:{step.kind.value}")
            self.report(StepDone(step))
            p.done.append(step.id)


def _describe(ctx: AccountContext, exc: Exception) -> str:
    text = str(exc) if isinstance(exc, ProvisionerError) else f"{type(exc).__name__}: {exc}"
    return ctx.conn.redactor.redact(text)
