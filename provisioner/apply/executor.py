"""Run a plan: per account, steps in dependency order; accounts in parallel.

A step that fails stops its account (the steps after it are skipped) while the
other accounts go on; the run then exits 1 with a summary.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from provisioner.apply.context import AccountContext
from provisioner.apply.steps import RUNNERS, settle_journal
from provisioner.connections import Connections
from provisioner.errors import ProvisionerError
from provisioner.failpoints import failpoint
from provisioner.journal import Journal
from provisioner.plan.model import AccountPlan, Plan, Step


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


def execute(
    conn: Connections, plan: Plan, *, parallelism: int = 8, on_step: StepHook = lambda _e, _s: None
) -> list[AccountResult]:
    journal = Journal(conn.vault, conn.manifest.vault.state_path)
    specs = {a.name: a for a in conn.manifest.accounts}
    journaled = _journaled(journal)  # one listing, not one per account
    todo = [
        acc
        for acc in plan.accounts
        if any(not s.blocked for s in acc.steps) or acc.name in journaled
    ]
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        return list(
            pool.map(
                lambda acc: _run_account(
                    AccountContext(specs[acc.name], conn, journal), acc, on_step
                ),
                todo,
            )
        )


def _journaled(journal: Journal) -> set[str]:
    return set(journal.accounts())


def _run_account(ctx: AccountContext, plan: AccountPlan, on_step: StepHook) -> AccountResult:
    result = AccountResult(plan.name)
    try:
        settle_journal(ctx)
    except Exception as exc:  # noqa: BLE001 - one account's failure must not stop the others
        result.failed, result.error = "journal", _describe(ctx, exc)
        ctx.log(f"settling the journal failed: {result.error}")
        return result
    failpoint("after_settle")
    failed: set[str] = set()
    for step in plan.steps:
        if step.blocked or any(d in failed for d in step.depends_on) or result.failed:
            result.skipped.append(step.id)
            continue
        on_step("start", step)
        try:
            RUNNERS[step.kind](ctx, step)
        except Exception as exc:  # noqa: BLE001
            failed.add(step.id)
            result.failed, result.error = step.id, _describe(ctx, exc)
            ctx.log(f"{step.id} failed: {result.error}")
            continue
        failpoint(f"after_step:{step.kind.value}")
        on_step("done", step)
        result.done.append(step.id)
    result.tx_hashes = list(ctx.tx_hashes)
    return result


def _describe(ctx: AccountContext, exc: Exception) -> str:
    text = str(exc) if isinstance(exc, ProvisionerError) else f"{type(exc).__name__}: {exc}"
    return ctx.conn.redactor.redact(text)
