"""Issue 17: plan and apply agree, for accounts that exist already and for every partial state.

For each scenario the plan is made, then apply runs, and what apply did is counted where it
landed: the account's transactions read from the chain (with their amounts), dYdX's writes
from the emulator's request counts, Vault versions from each destination's metadata. They
must be exactly the plan's runnable steps and amounts. Scenarios: fresh; converged; stopped
after each step of onboarding; onboarded with the official client dydx3 (the web app's path),
below and above its target; keys imported with `provision import`; deposit raised; lowered.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.adoption import (
    Effects,
    amounts,
    by_account,
    effects_since,
    expected_from_plan,
    onboard_with_dydx3,
    snapshot,
    step_kinds,
)
from support.apply_runs import (
    Manifest,
    Result,
    cli_captured,
    make_accounts,
    web3,
    write_manifest,
)
from support.custody import api_key_pairs, stark_key_pairs, whole_local_storage, write_export
from support.money import wait_until
from support.safety import provision

from provisioner.money import format_usdc, from_base_units
from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox

SIGKILL = -9
STOPPED_AFTER = ("stark_key", "onboard", "register", "approve", "deposit", "api_key")
ADOPTED = ("fresh", "converged", "webapp", "funded", "imported", "raised", "lowered")


@dataclass
class Round:
    """One manifest's plan, the apply after it, and what that apply did."""

    m: Manifest
    plan: dict[str, Any]
    plan_text: str
    apply: Result
    effects: Effects
    expected: Effects
    replan: dict[str, Any]
    status_before: dict[str, dict[str, Any]]
    status_after: dict[str, dict[str, Any]]
    setup: list[Any]


@dataclass
class World:
    adopted: Round
    stopped: dict[str, Round]
    credited: dict[str, int]  # what the web app's deposit of each account credited

    def round_of(self, scenario: str) -> tuple[Round, str]:
        if scenario.startswith("stopped-"):
            return self.stopped[scenario.removeprefix("stopped-")], "acct"
        return self.adopted, scenario


def _status(m: Manifest) -> dict[str, dict[str, Any]]:
    res = cli_captured("status", "-f", str(m.path), "--format", "json")
    assert res.rc == 0, res.text
    return {row["account"]: row for row in json.loads(res.out)["accounts"]}


def _round(
    sandbox: SandboxInfo, m: Manifest, *apply_args: str, setup: list[Any] | None = None
) -> Round:
    status_before = _status(m)
    before = snapshot(sandbox, m)
    planned = cli_captured("plan", "-f", str(m.path), "--format", "json")
    assert planned.rc == 0, planned.text
    text = cli_captured("plan", "-f", str(m.path))
    quiet = effects_since(sandbox, m, before)
    assert quiet.vault == {} and not any(quiet.txs.values()), "plan wrote something"
    assert not quiet.dydx_writes, f"plan wrote at dYdX: {quiet.dydx_writes}"
    before = snapshot(sandbox, m)
    applied = cli_captured("apply", "-f", str(m.path), "--auto-approve", *apply_args)
    effects = effects_since(sandbox, m, before)
    replan = cli_captured("plan", "-f", str(m.path), "--format", "json")
    assert replan.rc == 0, replan.text
    plan = json.loads(planned.out)
    return Round(
        m=m,
        plan=plan,
        plan_text=text.out,
        apply=applied,
        effects=effects,
        expected=expected_from_plan(plan, m),
        replan=json.loads(replan.out),
        status_before=status_before,
        status_after=_status(m),
        setup=setup or [],
    )


def _stopped(sandbox: SandboxInfo, tmp: Path, kind: str) -> Round:
    """A fresh account whose first apply died right after its ``kind`` step."""
    [account] = make_accounts(
        sandbox, [{"name": "acct", "deposit": "2", "api_keys": ["default", "hedger"]}]
    )
    directory = tmp / f"stopped-{kind}"
    directory.mkdir()
    m = write_manifest(directory, [account])
    killed = provision(
        sandbox, "apply", "-f", str(m.path), "--auto-approve", failpoint=f"after_step:{kind}"
    )
    assert killed.rc == SIGKILL, str(killed)
    # What the dead run broadcast is its own effect, not the rerun's: an account's
    # transactions go out back to back and are awaited at its end, so some may still be in
    # the pool; the effects are counted once the node has mined them.
    w3 = web3(sandbox)
    wait_until(
        lambda: (
            w3.eth.get_transaction_count(account.address, "pending")
            == w3.eth.get_transaction_count(account.address)
        ),
        30,
        "the dead run's transactions mined",
    )
    # a plain rerun, as a CI would: the dead run's leases are taken over, nothing by hand
    return _round(sandbox, m, setup=[killed])


@pytest.fixture(scope="module")
def world(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("adoption")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in sandbox.env().items():
            mp.setenv(name, value)
        specs = [
            {"name": "fresh", "deposit": "4.5", "api_keys": ["default", "hedger"]},
            {"name": "converged", "deposit": "2"},
            {"name": "webapp", "deposit": "4.5", "api_keys": ["default", "hedger"]},
            {"name": "funded", "deposit": "10"},
            {"name": "imported", "deposit": "4.5"},
            {"name": "raised", "deposit": "2"},
            {"name": "lowered", "deposit": "3"},
        ]
        accounts = make_accounts(sandbox, specs)
        by = {a.name: a for a in accounts}
        credited: dict[str, int] = {}
        wallets = {}
        for name, amount in (("webapp", "3"), ("funded", "10.01"), ("imported", "3")):
            wallets[name], credited[name] = onboard_with_dydx3(
                sandbox, by[name].private_key, deposit=amount
            )
        m = write_manifest(tmp, accounts)
        setup: list[Any] = [
            cli_captured(
                "apply",
                "-f",
                str(m.path),
                "--auto-approve",
                *("--target", "converged", "--target", "raised", "--target", "lowered"),
            )
        ]
        assert setup[0].rc == 0, setup[0].text
        wallet = wallets["imported"]
        export = write_export(
            tmp / "imported.json",
            whole_local_storage(stark_key_pairs(wallet), api_key_pairs(wallet)),
        )
        setup.append(
            cli_captured(
                "import", "-f", str(m.path), "--account", "imported", "--local-storage", str(export)
            )
        )
        assert setup[-1].rc == 0, setup[-1].text
        by["raised"].deposit, by["lowered"].deposit = "3", "1"
        m.rewrite()
        # the deposits this run should make: 4.5 + 1.5 + 1.5 + 1 (the funded account's 10 is there)
        adopted = _round(sandbox, m, "--max-deposit", "8.5", setup=setup)
        stopped = {kind: _stopped(sandbox, tmp, kind) for kind in STOPPED_AFTER}
        yield World(adopted, stopped, credited)


SCENARIOS = (*ADOPTED, *(f"stopped-{k}" for k in STOPPED_AFTER))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_apply_does_exactly_what_the_plan_said(world: World, scenario: str) -> None:
    r, name = world.round_of(scenario)
    assert r.apply.rc == 0, r.apply.text
    assert by_account(r.effects, r.m, name) == by_account(r.expected, r.m, name), (
        f"{scenario}: plan {step_kinds(r.plan, name)}\n{r.plan_text}\n{r.apply.text}"
    )


@pytest.mark.parametrize("scenario", ["adopted", *(f"stopped-{k}" for k in STOPPED_AFTER)])
def test_dydx_writes_are_the_ones_planned(world: World, scenario: str) -> None:
    r = world.adopted if scenario == "adopted" else world.stopped[scenario.removeprefix("stopped-")]
    assert r.effects.dydx_writes == r.expected.dydx_writes, r.apply.text
    assert r.expected.dydx_writes or scenario != "adopted", "the table counted no dYdX write"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_converges_in_one_apply(world: World, scenario: str) -> None:
    r, name = world.round_of(scenario)
    assert step_kinds(r.replan, name) == [], r.apply.text


def test_the_table_is_not_empty_a_fresh_account_does_everything(world: World) -> None:
    r = world.adopted
    txs, vault = by_account(r.effects, r.m, "fresh")
    assert txs == [("registerUser", 0), ("approve", 4_500_000), ("deposit", 4_500_000)]
    assert vault == {
        r.m.stark_path("fresh"): 2,  # the key, then its position
        r.m.api_path("fresh", "default"): 1,
        r.m.api_path("fresh", "hedger"): 1,
    }
    # onboarding for the fresh account, a named key for it and for the web app's account
    assert r.effects.dydx_writes == Counter({"POST /v3/onboarding": 1, "POST /v3/api-keys": 2})


def test_a_web_app_account_plans_only_what_is_missing(world: World) -> None:
    """Onboarded, registered and 3 USDC deposited by dydx3, target 4.5: no registration, an
    allowance and a deposit of exactly 1.5, and the deposit ceiling held to 1.5."""
    r = world.adopted
    assert step_kinds(r.plan, "webapp") == [
        "stark_key",
        "approve",
        "deposit",
        "api_key/default",
        "api_key/hedger",
    ]
    assert amounts(r.plan, "webapp") == {"approve": 1_500_000, "deposit": 1_500_000}
    assert "deposited 3 of 4.5 USDC" in r.plan_text
    assert r.effects.txs["webapp"] == [("approve", 1_500_000), ("deposit", 1_500_000)]
    assert "webapp: done: sent a deposit of 1.5 USDC (3 of 4.5 already there)" in r.apply.err
    assert "webapp: done: sent approve of 1.5 USDC for the exchange" in r.apply.err


def test_an_account_funded_past_its_target_gets_no_allowance_and_no_deposit(world: World) -> None:
    r = world.adopted
    assert world.credited["funded"] >= 10_000_000
    assert step_kinds(r.plan, "funded") == ["stark_key", "api_key/default"]
    assert r.effects.txs["funded"] == []  # no approval nothing needed, no deposit
    assert "funded: done: deposit" not in r.apply.err and "funded: done: approve" not in r.apply.err


def test_imported_keys_plan_from_vault(world: World) -> None:
    r = world.adopted
    assert step_kinds(r.plan, "imported") == ["approve", "deposit"]
    assert amounts(r.plan, "imported") == {"approve": 1_500_000, "deposit": 1_500_000}


def test_raised_and_lowered_deposits(world: World) -> None:
    r = world.adopted
    assert step_kinds(r.plan, "raised") == ["approve", "deposit"]
    assert amounts(r.plan, "raised") == {"approve": 1_000_000, "deposit": 1_000_000}
    assert step_kinds(r.plan, "lowered") == [] and step_kinds(r.plan, "converged") == []
    assert r.effects.txs["lowered"] == [] and r.effects.txs["converged"] == []


def test_status_of_adopted_accounts_before_and_after_their_first_apply(world: World) -> None:
    r = world.adopted
    before, after = r.status_before["webapp"], r.status_after["webapp"]
    # before: nothing in Vault, yet registered and 3 deposited, read with the derived key
    assert before["onboarded"] is True and before["registered"] is True
    assert before["deposited"] == "3" and before["target"] == "4.5"
    assert before["stark_key_in_vault"] is False and before["stark_key_derived"] is True
    assert before["api_keys"] == {"default": False, "hedger": False}
    assert after["registered"] is True and after["deposited"] == "4.5"
    assert after["stark_key_in_vault"] is True and after["stark_key_derived"] is False
    assert after["api_keys"] == {"default": True, "hedger": True}
    funded = r.status_before["funded"]
    assert funded["registered"] is True
    assert funded["deposited"] == format_usdc(from_base_units(world.credited["funded"]))
    imported = r.status_before["imported"]
    assert imported["stark_key_in_vault"] is True and imported["deposited"] == "3"
