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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from provisioner.apply.budget import DepositBudget
from provisioner.apply.context import AccountContext
from provisioner.apply.steps import RUNNERS, await_confirmations, settle_journal
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
    budget: DepositBudget | None = None,
) -> list[AccountResult]:
    """``budget``: the run's deposit ceilings, charged by every deposit sent (one for all accounts)."""
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
            on_step,
            journaled(acc.name),
        )
        for acc in plan.accounts
        if any(not s.blocked for s in acc.steps) or journaled(acc.name)
    ]
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        list(pool.map(_AccountRun.open_window, runs))
        list(pool.map(_AccountRun.finish, runs))
    return [r.result for r in runs]


def _journaled(journal: Journal, chain_id: int) -> tuple[set[str], set[str]]:
    """Account names with entries of their own, and sender addresses with transactions."""
    return set(journal.accounts()), journal.senders(chain_id)


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
        self, ctx: AccountContext, plan: AccountPlan, on_step: StepHook, journaled: bool
    ) -> None:
        self.ctx = ctx
        self.journaled = journaled  # the run's one listing showed entries for this account
        self.plan = plan
        self.on_step = on_step
        self.result = AccountResult(plan.name)
        self.failed: set[str] = set()
        self.first, self.rest = _split(plan.steps)

    def open_window(self) -> None:
        try:
            if self.journaled:  # entries appear only under the account's lock, which we hold
                settle_journal(self.ctx)
        except Exception as exc:  # noqa: BLE001 - one account's failure must not stop the others
            self.result.failed, self.result.error = "journal", _describe(self.ctx, exc)
            self.ctx.log(f"settling the journal failed: {self.result.error}")
            return
        failpoint("after_settle")
        self._run(self.first)

    def finish(self) -> None:
        if self.result.failed != "journal":
            self._run(self.rest)
        try:  # also after a failed step: what was sent is settled now, not left to the next run
            await_confirmations(self.ctx)
        except Exception as exc:  # noqa: BLE001 - the journal keeps what is not final
            if not self.result.failed:
                self.result.failed, self.result.error = "confirmations", _describe(self.ctx, exc)
            self.ctx.log(f"waiting for confirmations failed: {_describe(self.ctx, exc)}")
        self.result.tx_hashes = list(self.ctx.tx_hashes)

    def _run(self, steps: Sequence[Step]) -> None:
        result = self.result
        for step in steps:
            if step.blocked or any(d in self.failed for d in step.depends_on) or result.failed:
                result.skipped.append(step.id)
                continue
            self.on_step("start", step)
            try:
                RUNNERS[step.kind](self.ctx, step)
            except Exception as exc:  # noqa: BLE001
                self.failed.add(step.id)
                result.failed, result.error = step.id, _describe(self.ctx, exc)
                self.ctx.log(f"{step.id} failed: {result.error}")
                continue
            failpoint(f"after_step:{step.kind.value}")
            self.on_step("done", step)
            result.done.append(step.id)


def _describe(ctx: AccountContext, exc: Exception) -> str:
    text = str(exc) if isinstance(exc, ProvisionerError) else f"{type(exc).__name__}: {exc}"
    return ctx.conn.redactor.redact(text)
