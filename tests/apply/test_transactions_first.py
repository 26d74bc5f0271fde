"""Every account's transactions before anyone's API keys and confirmation waits (issue #21).

With a thread per account, an account whose transactions are sent waits for the others'
before its other steps: those would compete for the CPUs with the transactions still being
prepared, and the run ends with the block that takes the last of them. On the unit fakes,
with the step runners replaced by recorders; no timing is asserted: a step that must not
start yet is given a bounded chance to, and the order of what happened is checked.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from support.apply_fakes import World, world

from provisioner.apply import executor
from provisioner.apply.context import AccountContext, StepFailed
from provisioner.apply.events import Outcome
from provisioner.apply.signals import Drain
from provisioner.plan.model import PARAMS, AccountPlan, Action, Plan, Step, StepKind
from provisioner.plan.params import ApiKeyParams, DepositParams, StarkKeyParams, StepParams

CHANCE_S = 0.5  # how long a step that must wait is given to start anyway (not asserted)


def _two_accounts(w: World) -> tuple[World, list[str]]:
    other = replace(w.spec, name="mm-other", address="0x" + "22" * 20)
    manifest = replace(w.conn.manifest, accounts=(w.spec, other))
    return replace(w, conn=replace(w.conn, manifest=manifest)), [w.spec.name, other.name]


def _plan(w: World, names: list[str], kinds: dict[str, tuple[StepKind, ...]]) -> Plan:
    accounts = []
    for name in names:
        made = []
        for i, kind in enumerate(kinds[name]):
            params: StepParams = {
                StepKind.API_KEY: lambda name=name: ApiKeyParams(
                    path=f"dydx/{name}/api/bot", name="bot"
                ),
                StepKind.STARK_KEY: lambda name=name: StarkKeyParams(path=f"dydx/{name}/stark"),
                StepKind.DEPOSIT: lambda: DepositParams(1, 1),
            }.get(kind, PARAMS[kind])()
            made.append(
                Step(
                    id=f"{name}/{kind.value}/{i}",
                    account=name,
                    kind=kind,
                    action=Action.CREATE,
                    summary=kind.value,
                    reason="test",
                    params=params,
                )  # fmt: skip
            )
        address = next(s.address for s in w.conn.manifest.accounts if s.name == name)
        accounts.append(AccountPlan(name=name, address=address, steps=tuple(made)))
    return Plan(
        "unit.yaml", "sepolia", w.conn.manifest.network.chain_id, "sha256:t", tuple(accounts)
    )


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[str], dict]]:
    """Each step records its start and end; ``hooks[(account, kind)]`` runs inside it."""
    order: list[str] = []
    lock = threading.Lock()
    hooks: dict[tuple[str, StepKind | str], Callable[[], None]] = {}

    def note(what: str) -> None:
        with lock:
            order.append(what)

    def runner(ctx: AccountContext, step: Step) -> Outcome:
        note(f"{ctx.spec.name} {step.kind.value} start")
        try:
            hooks.get((ctx.spec.name, step.kind), lambda: None)()
        finally:
            note(f"{ctx.spec.name} {step.kind.value} end")
        return Outcome(True, "recorded")

    monkeypatch.setattr(executor, "RUNNERS", dict.fromkeys(StepKind, runner))

    def confirmations(ctx: AccountContext) -> None:
        note(f"{ctx.spec.name} confirmations")
        hooks.get((ctx.spec.name, "confirmations"), lambda: None)()

    monkeypatch.setattr(executor, "await_confirmations", confirmations)
    yield order, hooks


def _index(order: list[str], what: str) -> int:
    return order.index(what)


def test_no_api_key_starts_before_every_accounts_transactions_are_sent(recorded) -> None:
    order, hooks = recorded
    w, (fast, slow) = _two_accounts(world())
    fast_api = threading.Event()
    hooks[(fast, StepKind.API_KEY)] = fast_api.set
    # the slow account's deposit gives the fast account's API key every chance to start
    hooks[(slow, StepKind.DEPOSIT)] = lambda: fast_api.wait(CHANCE_S)
    plan = _plan(w, [fast, slow], {
        fast: (StepKind.ONBOARD, StepKind.REGISTER, StepKind.DEPOSIT, StepKind.API_KEY),
        slow: (StepKind.ONBOARD, StepKind.REGISTER, StepKind.DEPOSIT, StepKind.API_KEY),
    })  # fmt: skip
    results = executor.execute(w.conn, plan, parallelism=4)
    assert all(r.failed is None for r in results), results
    sent = _index(order, f"{slow} deposit end")
    assert _index(order, f"{fast} api_key start") > sent, order
    assert _index(order, f"{fast} confirmations") > sent, order
    assert _index(order, f"{fast} deposit end") < _index(order, f"{fast} api_key start")


def test_an_account_with_no_transactions_waits_for_the_others_but_its_own_go_first(
    recorded,
) -> None:
    order, hooks = recorded
    w, (keys_only, chain) = _two_accounts(world())
    started = threading.Event()
    hooks[(keys_only, StepKind.API_KEY)] = started.set
    hooks[(chain, StepKind.REGISTER)] = lambda: started.wait(CHANCE_S)
    plan = _plan(w, [keys_only, chain], {
        keys_only: (StepKind.API_KEY,),
        chain: (StepKind.STARK_KEY, StepKind.ONBOARD, StepKind.REGISTER, StepKind.API_KEY),
    })  # fmt: skip
    executor.execute(w.conn, plan, parallelism=4)
    assert _index(order, f"{keys_only} api_key start") > _index(order, f"{chain} register end")
    # steps before an account's own transactions are not held back
    assert _index(order, f"{chain} onboard end") < _index(order, f"{chain} register start")


def test_a_failed_transaction_lets_the_others_go_on(recorded) -> None:
    order, hooks = recorded
    w, (ok, failing) = _two_accounts(world())

    def fail() -> None:
        raise StepFailed("the node refused it")

    hooks[(failing, StepKind.REGISTER)] = fail
    plan = _plan(w, [ok, failing], {
        ok: (StepKind.REGISTER, StepKind.API_KEY),
        failing: (StepKind.ONBOARD, StepKind.REGISTER, StepKind.DEPOSIT, StepKind.API_KEY),
    })  # fmt: skip
    results = {r.name: r for r in executor.execute(w.conn, plan, parallelism=4)}
    assert results[ok].failed is None and f"{ok} api_key end" in order
    assert results[failing].failed == f"{failing}/register/1"
    assert f"{failing} confirmations" in order  # what it sent is still settled


def test_a_drain_opens_the_wait(recorded) -> None:
    """One account is still in its transactions when the run is asked to stop: the other
    stops waiting for it, starts no new step and settles what it sent."""
    order, hooks = recorded
    w, (waiting, stuck) = _two_accounts(world())
    drain = Drain(grace=60, write=lambda _text: None)
    settled, seen = threading.Event(), []
    hooks[(waiting, "confirmations")] = settled.set

    def stuck_until_the_other_settled() -> None:
        drain.request(signal.SIGTERM)
        seen.append(settled.wait(10))

    hooks[(stuck, StepKind.REGISTER)] = stuck_until_the_other_settled
    hooks[(waiting, StepKind.REGISTER)] = lambda: None
    drain.begin_steps()
    plan = _plan(w, [waiting, stuck], {
        waiting: (StepKind.API_KEY, StepKind.REGISTER, StepKind.API_KEY),
        stuck: (StepKind.REGISTER, StepKind.API_KEY),
    })  # fmt: skip
    results = {r.name: r for r in executor.execute(w.conn, plan, parallelism=4, drain=drain)}
    assert seen == [True], order  # the other settled while this one had not sent yet
    assert results[waiting].not_started == (f"{waiting}/api_key/2",) or (
        results[waiting].not_started == (f"{waiting}/register/1", f"{waiting}/api_key/2")
    )


def test_in_two_passes_no_account_waits_for_the_others(recorded) -> None:
    """More accounts than threads: an account waiting would hold a thread another needs."""
    order, hooks = recorded
    w, (first, second) = _two_accounts(world())
    plan = _plan(w, [first, second], {
        first: (StepKind.REGISTER, StepKind.API_KEY),
        second: (StepKind.REGISTER, StepKind.API_KEY),
    })  # fmt: skip
    results = executor.execute(w.conn, plan, parallelism=1)
    assert all(r.failed is None for r in results)
    assert order.index(f"{first} api_key end") < order.index(f"{second} register start")
