"""The planner is pure: plain desired state and facts in, steps out."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from provisioner.facts import MANAGED_BY, AccountFacts, VaultEntry, WorldFacts
from provisioner.manifest.model import (
    AccountSpec,
    ApiKeySpec,
    Manifest,
    NetworkSpec,
    PrivateKeySigner,
    SecretRef,
    VaultAuth,
    VaultSpec,
)
from provisioner.plan.model import Action, Plan, StepKind
from provisioner.plan.params import ApproveParams, DeleteApiKeyParams, DepositParams, StarkKeyParams
from provisioner.plan.planner import PlanOptions, make_plan, plan_account
from provisioner.plan.render import render_markdown, render_text

ADDR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SIGNER = PrivateKeySigner(key=SecretRef("vault", "sandbox/signers/1", "private_key"))


def spec(**kw: object) -> AccountSpec:
    base = AccountSpec(
        name="mm-alpha",
        address=ADDR,
        signer=SIGNER,
        deposit=Decimal("8.2"),
        stark_key_path="dydx/mm-alpha/stark",
        api_keys=(
            ApiKeySpec("default", "dydx/mm-alpha/api/default"),
            ApiKeySpec("hedger", "dydx/mm-alpha/api/hedger"),
        ),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def ours(path: str, fields: set[str], **public: str) -> VaultEntry:
    return VaultEntry(
        path=path,
        exists=True,
        version=1,
        managed_by=MANAGED_BY,
        account="mm-alpha",
        fields=frozenset(fields),
        public=tuple(public.items()),
    )


STARK = ours(
    "dydx/mm-alpha/stark",
    {"private_key", "public_key", "public_key_y_coordinate", "ethereum_address", "position_id"},
    public_key="0x1",
    ethereum_address=ADDR.lower(),
    position_id="7",
)
API = {"key", "secret", "passphrase"}


def fresh() -> AccountFacts:
    return AccountFacts(
        name="mm-alpha",
        address=ADDR,
        stark_secret=VaultEntry("dydx/mm-alpha/stark", exists=False),
        api_secrets=(
            ("default", VaultEntry("dydx/mm-alpha/api/default", False)),
            ("hedger", VaultEntry("dydx/mm-alpha/api/hedger", False)),
        ),
        user_exists=False,
        dydx_api_keys=None,
        stark_key_owner=None,
        usdc_balance=1_000_000 * 10**6,
        usdc_allowance=0,
        eth_balance_wei=10**19,
        deposited=0,
    )


def converged() -> AccountFacts:
    return replace(
        fresh(),
        stark_secret=STARK,
        api_secrets=(
            ("default", ours("dydx/mm-alpha/api/default", API, key="k-default")),
            ("hedger", ours("dydx/mm-alpha/api/hedger", API, key="k-hedger")),
        ),
        user_exists=True,
        dydx_api_keys=frozenset({"k-default", "k-hedger"}),
        stark_key_owner=ADDR,
        deposited=8_200_000,
    )


def kinds(plan_steps: tuple) -> list[str]:  # type: ignore[type-arg]
    return [s.id.split("/", 1)[1] for s in plan_steps]


def test_fresh_account_gets_every_step_in_dependency_order() -> None:
    p = plan_account(spec(), fresh())
    assert kinds(p.steps) == [
        "stark_key",
        "onboard",
        "register",
        "approve",
        "deposit",
        "api_key/default",  # last: under v3's limits an eleventh write waits a minute
        "api_key/hedger",
    ]
    assert not any(s.blocked for s in p.steps)
    assert p.steps[0].params == StarkKeyParams(
        path=p.steps[0].params.path, version=0, dydx_user="absent"
    )
    approve, deposit = p.steps[3], p.steps[4]
    assert deposit.params == DepositParams(
        amount_base_units=8_200_000, target_base_units=8_200_000
    )  # exact: 8.2 USDC, never 8199999
    assert approve.params == ApproveParams(
        amount_base_units=8_200_000, target_base_units=8_200_000
    )  # approve exactly what is needed
    assert set(deposit.depends_on) == {"mm-alpha/onboard", "mm-alpha/register", "mm-alpha/approve"}
    assert set(approve.depends_on) == {"mm-alpha/onboard", "mm-alpha/register"}


def test_converged_account_plans_nothing() -> None:
    p = plan_account(spec(), converged())
    assert p.steps == () and p.notes == ()


def test_raising_the_deposit_deposits_exactly_the_difference() -> None:
    p = plan_account(spec(deposit=Decimal("10.49")), replace(converged(), usdc_allowance=10**12))
    assert kinds(p.steps) == ["deposit"]
    assert p.steps[0].params == DepositParams(
        amount_base_units=2_290_000, target_base_units=10_490_000
    )


def test_pending_deposits_count_toward_the_target() -> None:
    p = plan_account(spec(), replace(converged(), deposited=0, pending_deposits=8_200_000))
    assert p.steps == ()


def test_lowering_the_deposit_only_reports() -> None:
    p = plan_account(spec(deposit=Decimal("1")), converged())
    assert p.steps == ()
    assert "nothing to do" in p.notes[0].message and "8.2" in p.notes[0].message


def test_import_only_account_blocks_steps_that_need_the_ethereum_key() -> None:
    p = plan_account(spec(signer=None), fresh())
    assert all(s.blocked for s in p.steps)
    assert "import-only" in p.steps[0].blocked  # type: ignore[operator]


def test_import_only_converged_account_is_quiet() -> None:
    assert plan_account(spec(signer=None), converged()).steps == ()


def test_foreign_vault_data_is_a_conflict_and_blocks_dependents() -> None:
    foreign = VaultEntry("dydx/mm-alpha/stark", exists=True, version=3, fields=frozenset({"x"}))
    p = plan_account(spec(), replace(fresh(), stark_secret=foreign))
    first = p.steps[0]
    assert first.kind is StepKind.STARK_KEY and first.blocked and "conflict" in first.blocked
    onboard = p.steps[1]
    assert onboard.blocked == "waits for blocked step mm-alpha/stark_key"


def test_not_enough_usdc_blocks_approve_and_deposit() -> None:
    p = plan_account(spec(deposit=Decimal("5000000")), fresh())
    by = {s.kind: s for s in p.steps}
    assert "wallet holds 1000000 USDC" in (by[StepKind.DEPOSIT].blocked or "")
    assert by[StepKind.APPROVE].blocked


def test_max_allowance_when_the_manifest_asks() -> None:
    p = plan_account(spec(allowance="max"), fresh())
    approve = next(s for s in p.steps if s.kind is StepKind.APPROVE)
    assert approve.params.amount_base_units == 2**256 - 1


def test_keys_removed_from_the_manifest_are_left_in_place_and_reported() -> None:
    facts = replace(converged(), dydx_api_keys=frozenset({"k-default", "k-hedger", "k-old"}))
    p = plan_account(spec(), facts)
    assert p.steps == ()
    assert "k-old" in p.notes[0].message and "--prune-api-keys" in p.notes[0].message


def test_prune_deletes_unknown_keys_but_never_the_default() -> None:
    facts = replace(converged(), dydx_api_keys=frozenset({"k-default", "k-hedger", "k-old"}))
    p = plan_account(spec(), facts, PlanOptions(prune_api_keys=True))
    assert [(s.kind, s.params) for s in p.steps] == [
        (StepKind.DELETE_API_KEY, DeleteApiKeyParams(key_id="k-old"))
    ]
    assert p.steps[0].action is Action.DELETE


def test_a_named_key_deleted_behind_our_back_is_replaced_the_default_is_blocked() -> None:
    facts = replace(converged(), dydx_api_keys=frozenset())
    p = plan_account(spec(), facts)
    by = {s.id: s for s in p.steps}
    assert by["mm-alpha/replace_api_key/hedger"].blocked is None
    assert "cannot be recreated" in (by["mm-alpha/replace_api_key/default"].blocked or "")
    assert [n.level for n in p.notes] == ["drift", "drift"]


def test_stark_key_registered_to_someone_else_is_a_conflict() -> None:
    p = plan_account(
        spec(), replace(converged(), stark_key_owner="0x0000000000000000000000000000000000000001")
    )
    assert p.steps[0].kind is StepKind.REGISTER and "conflict" in (p.steps[0].blocked or "")


def test_plan_round_trips_through_json_and_renders_without_secrets() -> None:
    manifest = Manifest(
        path="provision.yaml",
        version=1,
        network=NetworkSpec(
            "sandbox",
            11155111,
            "http://api",
            "http://rpc",
            "0x3D05aaCd0fED84f65dE0D91e4621298E702911E2",
            "0x7fC9C132268E0E414991449c003DbdB3E73E2059",
            1,
        ),
        vault=VaultSpec(address="http://vault", auth=VaultAuth(method="token")),
        accounts=(spec(),),
    )
    plan = make_plan(manifest, WorldFacts(chain_id=11155111, accounts=(fresh(),)))
    assert Plan.from_dict(plan.to_dict()) == plan
    text = render_text(plan)
    assert "Plan: 6 to add, 1 to change, 0 blocked." in text
    assert "+ deposit 8.2 USDC" in text
    md = render_markdown(plan)
    assert "| `mm-alpha` |" in md
    assert plan.fingerprint.startswith("sha256:")
    same = make_plan(manifest, WorldFacts(chain_id=11155111, accounts=(fresh(),)))
    assert same.fingerprint == plan.fingerprint
    moved = make_plan(
        manifest, WorldFacts(chain_id=11155111, accounts=(replace(fresh(), usdc_allowance=1),))
    )
    assert moved.fingerprint != plan.fingerprint


def test_approve_waits_for_registration_so_a_blocked_deposit_costs_no_allowance() -> None:
    foreign = VaultEntry("dydx/mm-alpha/stark", exists=True, version=3, fields=frozenset({"x"}))
    p = plan_account(spec(), replace(fresh(), stark_secret=foreign))
    approve = next(s for s in p.steps if s.kind is StepKind.APPROVE)
    assert set(approve.depends_on) == {"mm-alpha/onboard", "mm-alpha/register"}
    assert approve.blocked is not None and approve.blocked.startswith("waits for blocked step")


def test_what_an_untrusted_plan_did_not_check_is_named_and_saved() -> None:
    """Issue 16: skipped checks travel with the plan (text, markdown, JSON); not a change."""
    manifest = Manifest(
        path="provision.yaml",
        version=1,
        network=NetworkSpec(
            "sandbox",
            11155111,
            "http://api",
            "http://rpc",
            "0x3D05aaCd0fED84f65dE0D91e4621298E702911E2",
            "0x7fC9C132268E0E414991449c003DbdB3E73E2059",
            1,
        ),
        vault=VaultSpec(address="http://vault", auth=VaultAuth(method="token")),
        accounts=(spec(),),
    )
    skipped = ("the API keys dYdX lists for each account: needs credentials",)
    facts = WorldFacts(
        chain_id=11155111,
        accounts=(replace(converged(), dydx_api_keys=None),),
        not_checked=skipped,
    )
    plan = make_plan(manifest, facts)
    assert plan.not_checked == skipped and not plan.summary().has_changes
    assert Plan.from_dict(plan.to_dict()) == plan
    text = render_text(plan)
    assert "Not checked by this untrusted plan (apply and the drift check do):" in text
    assert f"  - {skipped[0]}" in text and "No changes." in text
    assert f"- {skipped[0]}" in render_markdown(plan)
    assert "Not checked" not in render_text(make_plan(manifest, replace(facts, not_checked=())))
