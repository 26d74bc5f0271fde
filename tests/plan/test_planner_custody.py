"""The planner for accounts without a usable Ethereum signer: import-only, and a signer that is refused.

Import-only accounts get their STARK key and default API key from the web app
(`provision import`); whatever signs with the Ethereum key (onboarding, registration,
more API keys, deposits) is shown blocked with the reason, never attempted.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from provisioner.facts import MANAGED_BY, AccountFacts, VaultEntry
from provisioner.manifest.model import (
    AccountSpec,
    ApiKeySpec,
    PrivateKeySigner,
    RemoteSigner,
    SecretRef,
)
from provisioner.plan.model import AccountPlan, Plan, StepKind
from provisioner.plan.planner import PlanOptions, plan_account
from provisioner.plan.render import render_text

ADDR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
IMPORT_HINT = "provision import --account mm-delta --local-storage EXPORT.json"
API = frozenset({"key", "secret", "passphrase", "ethereum_address", "network"})
STARK_FIELDS = frozenset(
    {
        "private_key",
        "public_key",
        "public_key_y_coordinate",
        "ethereum_address",
        "network",
        "position_id",
        "account_id",
    }
)


def spec(**kw: object) -> AccountSpec:
    base = AccountSpec(
        name="mm-delta",
        address=ADDR,
        signer=None,
        deposit=Decimal("5"),
        stark_key_path="dydx/mm-delta/stark",
        api_keys=(
            ApiKeySpec("default", "dydx/mm-delta/api/default"),
            ApiKeySpec("hedger", "dydx/mm-delta/api/hedger"),
        ),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def ours(path: str, fields: frozenset[str], **public: str) -> VaultEntry:
    return VaultEntry(
        path=path,
        exists=True,
        version=1,
        managed_by=MANAGED_BY,
        account="mm-delta",
        fields=fields,
        public=tuple(sorted(public.items())),
    )


def never_onboarded() -> AccountFacts:
    return AccountFacts(
        name="mm-delta",
        address=ADDR,
        stark_secret=VaultEntry("dydx/mm-delta/stark", exists=False),
        api_secrets=(
            ("default", VaultEntry("dydx/mm-delta/api/default", False)),
            ("hedger", VaultEntry("dydx/mm-delta/api/hedger", False)),
        ),
        user_exists=False,
        usdc_balance=1_000 * 10**6,
        eth_balance_wei=10**19,
    )


def onboarded_in_web_app() -> AccountFacts:
    """dYdX knows the user (onboarded in the browser), Vault holds nothing yet."""
    return replace(never_onboarded(), user_exists=True)


def imported() -> AccountFacts:
    """After `provision import`: STARK key (with its position) and the default key in Vault."""
    return replace(
        onboarded_in_web_app(),
        stark_secret=ours(
            "dydx/mm-delta/stark",
            STARK_FIELDS,
            public_key="0x1234",
            ethereum_address=ADDR,
            position_id="100001",
            account_id="3fa2c8e4-0000-5000-8000-000000000001",
            network="sandbox",
        ),
        api_secrets=(
            ("default", ours("dydx/mm-delta/api/default", API, key="k-default")),
            ("hedger", VaultEntry("dydx/mm-delta/api/hedger", False)),
        ),
        dydx_api_keys=frozenset({"k-default"}),
    )


def ids(p: AccountPlan) -> list[str]:
    return [s.id.split("/", 1)[1] for s in p.steps]


def blocked(p: AccountPlan) -> dict[str, str]:
    return {s.id.split("/", 1)[1]: s.blocked or "" for s in p.steps}


# -- import-only -----------------------------------------------------------------------------


def test_never_onboarded_import_only_account_points_to_the_web_app_and_provision_import() -> None:
    p = plan_account(spec(), never_onboarded())
    assert ids(p) == [
        "stark_key",
        "onboard",
        "register",
        "approve",
        "deposit",
        "api_key/default",
        "api_key/hedger",
    ]
    why = blocked(p)
    assert all(why.values()), "nothing runs without an Ethereum signer"
    assert all(w.startswith("no signer (import-only account): ") for w in why.values())
    assert IMPORT_HINT in why["stark_key"]
    assert "onboard in the dYdX web app" in why["onboard"] and IMPORT_HINT in why["onboard"]
    assert IMPORT_HINT in why["api_key/default"]
    assert "creating an API key is signed with the Ethereum key" in why["api_key/hedger"]
    assert "registration needs an Ethereum signer" in why["register"]
    assert "needs an Ethereum signer" in why["deposit"]
    assert "needs an Ethereum signer" in why["approve"]


def test_onboarded_in_the_web_app_but_not_imported_yet_needs_only_the_import() -> None:
    p = plan_account(spec(), onboarded_in_web_app())
    assert "onboard" not in ids(p), "dYdX already knows the user"
    why = blocked(p)
    assert IMPORT_HINT in why["stark_key"] and IMPORT_HINT in why["api_key/default"]


def test_after_import_the_imported_steps_are_done_and_the_rest_is_blocked() -> None:
    p = plan_account(spec(), imported())
    # STARK key, onboarding, default API key (and the position id): done, so no step
    assert ids(p) == ["register", "approve", "deposit", "api_key/hedger"]
    why = blocked(p)
    assert all(why.values())
    assert "creating an API key" in why["api_key/hedger"]
    assert "registration needs an Ethereum signer" in why["register"]
    assert "a deposit needs an Ethereum signer" in why["deposit"]
    assert "a deposit needs an Ethereum signer" in why["approve"]
    assert not any(IMPORT_HINT in w for w in why.values()), "nothing left to import"


def test_imported_registered_and_funded_account_without_more_keys_is_converged() -> None:
    done = replace(imported(), stark_key_owner=ADDR, deposited=5 * 10**6)
    p = plan_account(spec(api_keys=spec().api_keys[:1]), done)
    assert p.converged and p.notes == ()


def test_an_imported_account_with_no_deposit_target_has_no_deposit_step() -> None:
    p = plan_account(spec(deposit=Decimal("0")), replace(imported(), stark_key_owner=ADDR))
    assert ids(p) == ["api_key/hedger"]


def test_pruning_keys_of_an_import_only_account_is_blocked() -> None:
    facts = replace(
        imported(), stark_key_owner=ADDR, deposited=5 * 10**6, dydx_api_keys={"k-default", "k-old"}
    )
    p = plan_account(spec(api_keys=spec().api_keys[:1]), facts, PlanOptions(prune_api_keys=True))
    [delete] = p.steps
    assert delete.kind is StepKind.DELETE_API_KEY
    assert delete.blocked and "deleting an API key is signed" in delete.blocked


def test_the_plan_text_shows_the_blocked_reasons() -> None:
    p = plan_account(spec(), onboarded_in_web_app())
    plan = Plan(
        manifest="provision.yaml", network="sandbox", chain_id=1, fingerprint="f", accounts=(p,)
    )
    text = render_text(plan, color=False)
    assert "! derive the STARK key" in text
    assert IMPORT_HINT in text
    assert "0 to add" in text


# -- a signer is configured ------------------------------------------------------------------


def test_imported_keys_with_a_signer_leave_only_the_steps_that_sign() -> None:
    signer = RemoteSigner(url="http://127.0.0.1:8545")
    p = plan_account(spec(signer=signer), imported())
    assert ids(p) == ["register", "approve", "deposit", "api_key/hedger"]
    assert not any(s.blocked for s in p.steps), "a signer unblocks deposits and the rest"


def test_a_signer_for_another_address_blocks_every_step_that_signs_with_the_reason() -> None:
    signer = PrivateKeySigner(key=SecretRef("env", "MM_DELTA_KEY"))
    error = f"signer for mm-delta signs for {OTHER}, manifest says {ADDR}"
    p = plan_account(spec(signer=signer), replace(never_onboarded(), signer_error=error))
    assert len(p.steps) == 7
    for step in p.steps:
        assert step.blocked == f"the signer cannot be used for {ADDR}: {error}", step.id
        assert "import-only" not in step.blocked


def test_a_refused_signer_does_not_block_steps_that_need_no_signature() -> None:
    """Completing the STARK secret with the position id uses the stored API key only."""
    stark = replace(
        imported().stark_secret,
        fields=STARK_FIELDS - {"position_id", "account_id"},
        public=(("ethereum_address", ADDR), ("public_key", "0x1234")),
    )
    facts = replace(
        imported(),
        stark_secret=stark,
        stark_key_owner=ADDR,
        deposited=5 * 10**6,
        signer_error="remote signer at http://127.0.0.1:1 is unreachable (connection refused or reset)",
    )
    p = plan_account(spec(signer=RemoteSigner(url="http://127.0.0.1:1")), facts)
    why = blocked(p)
    assert why["record_account"] == ""
    assert "unreachable" in why["api_key/hedger"]
