"""Rotation planning is pure: the key's recorded age, its policy and "now" (when the facts
were read) in; rotation and retirement steps out. No clock is read by the planner."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from test_planner import API, converged, ours, spec

from provisioner.errors import ProvisionerError
from provisioner.facts import AccountFacts, VaultEntry, WorldFacts
from provisioner.manifest.model import (
    AccountSpec,
    ApiKeySpec,
    Manifest,
    NetworkSpec,
    VaultAuth,
    VaultSpec,
)
from provisioner.plan.ages import iso
from provisioner.plan.model import Action, Plan, StepKind
from provisioner.plan.params import RetireApiKeyParams, RotateApiKeyParams
from provisioner.plan.planner import PlanOptions, make_plan, plan_account
from provisioner.plan.render import render_text
from provisioner.plan.rotation import rotation_target
from provisioner.plan.saved import PlanMismatch, check_saved
from provisioner.records import META_KEY_CREATED, META_KEY_ID, META_REPLACES

SCHEMAS = Path(__file__).resolve().parents[2] / "provisioner" / "schemas"
DAY = 86_400
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: when the quoter key was stored
QUOTER = "dydx/mm-alpha/api/quoter"


def keys(rotate_after: int | None = 90 * DAY, overlap: int = 3600) -> tuple[ApiKeySpec, ...]:
    return (
        ApiKeySpec("default", "dydx/mm-alpha/api/default"),
        ApiKeySpec("quoter", QUOTER, rotate_after=rotate_after, rotation_overlap=overlap),
    )


def quoter_entry(key: str, *, written: float = T0, **meta: str) -> VaultEntry:
    entry = ours(QUOTER, API, key=key)
    return replace(entry, version=3, written_at=written, metadata=tuple(sorted(meta.items())))


def facts_at(now: float | None, entry: VaultEntry, listed: set[str]) -> AccountFacts:
    return replace(
        converged(),
        api_secrets=(
            ("default", ours("dydx/mm-alpha/api/default", API, key="k-default")),
            ("quoter", entry),
        ),
        dydx_api_keys=frozenset({"k-default", *listed}),
        observed_at=now,
    )


def rotated(new: str, old: str, at: float) -> VaultEntry:
    """What a rotation leaves: the new key stored, its record naming the old one."""
    return quoter_entry(
        new,
        written=at + 0.4,
        **{META_KEY_ID: new, META_KEY_CREATED: _iso(at), META_REPLACES: old},
    )


def _iso(epoch: float) -> str:
    text = iso(epoch)
    assert text is not None
    return text


def test_a_key_younger_than_its_policy_plans_nothing() -> None:
    p = plan_account(spec(api_keys=keys()), facts_at(T0 + 89 * DAY, quoter_entry("k-q1"), {"k-q1"}))
    assert p.steps == ()
    (age,) = [k for k in p.api_keys if k.name == "quoter"]
    assert age.age == 89 * DAY and age.rotate_after == 90 * DAY
    assert age.next_rotation == T0 + 90 * DAY


def test_a_key_older_than_rotate_after_gets_a_rotation_step_with_its_age_and_policy() -> None:
    p = plan_account(spec(api_keys=keys()), facts_at(T0 + 91 * DAY, quoter_entry("k-q1"), {"k-q1"}))
    (step,) = p.steps
    assert step.kind is StepKind.ROTATE_API_KEY and step.action is Action.UPDATE
    assert step.summary == "rotate quoter: 91 d old, policy 90 d"
    assert step.params == RotateApiKeyParams(path=QUOTER, name="quoter", version=3, replaces="k-q1")
    assert step.blocked is None


def test_now_is_an_input_the_same_facts_without_it_plan_no_rotation() -> None:
    p = plan_account(spec(api_keys=keys()), facts_at(None, quoter_entry("k-q1"), {"k-q1"}))
    assert p.steps == ()


def test_the_rotation_record_gives_the_age_not_the_vault_version() -> None:
    # the destination was rewritten yesterday, but the key in it was created 91 days ago
    entry = quoter_entry(
        "k-q1", written=T0 + 90 * DAY, **{META_KEY_ID: "k-q1", META_KEY_CREATED: _iso(T0)}
    )
    p = plan_account(spec(api_keys=keys()), facts_at(T0 + 91 * DAY, entry, {"k-q1"}))
    assert [s.kind for s in p.steps] == [StepKind.ROTATE_API_KEY]


def test_a_stale_record_naming_another_key_is_ignored() -> None:
    # a run died between writing the metadata and the data: the record names a key never stored
    entry = quoter_entry(
        "k-q1", **{META_KEY_ID: "k-lost", META_KEY_CREATED: _iso(T0), META_REPLACES: "k-q1"}
    )
    p = plan_account(spec(api_keys=keys()), facts_at(T0 + 10, entry, {"k-q1"}))
    assert p.steps == ()  # neither a retirement of the stored key nor a rotation
    assert [k.previous_key for k in p.api_keys] == [None, None]


def test_the_replaced_key_keeps_working_during_the_overlap() -> None:
    entry = rotated("k-q2", "k-q1", T0)
    p = plan_account(spec(api_keys=keys()), facts_at(T0 + 1800, entry, {"k-q1", "k-q2"}))
    assert p.steps == ()
    assert any("k-q1 keeps working for 30 min more" in n.message for n in p.notes)
    # tracked, so not reported (or pruned) as a key the manifest does not name
    assert not any("not in the manifest" in n.message for n in p.notes)
    pruned = plan_account(
        spec(api_keys=keys()),
        facts_at(T0 + 1800, entry, {"k-q1", "k-q2"}),
        PlanOptions(prune_api_keys=True),
    )
    assert pruned.steps == ()
    (age,) = [k for k in p.api_keys if k.name == "quoter"]
    assert age.previous_key == "k-q1" and age.previous_retires_at == T0 + 3600


def test_after_the_overlap_the_replaced_key_is_retired() -> None:
    entry = rotated("k-q2", "k-q1", T0)
    p = plan_account(spec(api_keys=keys()), facts_at(T0 + 3780, entry, {"k-q1", "k-q2"}))
    (step,) = p.steps
    assert step.kind is StepKind.RETIRE_API_KEY and step.action is Action.DELETE
    assert step.summary == "retire the previous quoter key, replaced 1 h 3 min ago"
    assert step.params == RetireApiKeyParams(
        path=QUOTER, name="quoter", key_id="k-q1", overlap=3600
    )
    plan = Plan("m.yaml", "sandbox", 11155111, "sha256:" + "0" * 64, (p,))
    assert "1 to destroy" in render_text(plan)


def test_a_retired_key_gone_at_dydx_plans_nothing() -> None:
    entry = rotated("k-q2", "k-q1", T0)
    p = plan_account(spec(api_keys=keys()), facts_at(T0 + 7200, entry, {"k-q2"}))
    assert p.steps == ()
    assert not any("k-q1" in n.message for n in p.notes)


def test_no_overlap_retires_the_old_key_right_after_the_new_one_is_stored() -> None:
    p = plan_account(
        spec(api_keys=keys(rotate_after=5, overlap=0)),
        facts_at(T0 + 6, quoter_entry("k-q1"), {"k-q1"}),
    )
    rotate, retire = p.steps
    assert (
        rotate.kind is StepKind.ROTATE_API_KEY
        and rotate.summary == "rotate quoter: 6 s old, policy 5 s"
    )
    assert retire.kind is StepKind.RETIRE_API_KEY and retire.depends_on == (rotate.id,)
    assert retire.params == RetireApiKeyParams(path=QUOTER, name="quoter", key_id="k-q1", overlap=0)


def test_a_rotation_due_while_the_previous_key_is_in_its_overlap_waits() -> None:
    entry = rotated("k-q2", "k-q1", T0)
    p = plan_account(
        spec(api_keys=keys(rotate_after=60, overlap=3600)),
        facts_at(T0 + 120, entry, {"k-q1", "k-q2"}),
    )
    assert p.steps == ()
    assert any("rotation of quoter is due" in n.message for n in p.notes)


def test_retirement_comes_before_a_rotation_due_at_the_same_time() -> None:
    entry = rotated("k-q2", "k-q1", T0)
    p = plan_account(
        spec(api_keys=keys(rotate_after=60, overlap=30)),
        facts_at(T0 + 120, entry, {"k-q1", "k-q2"}),
    )
    retire, rotate = p.steps
    assert retire.kind is StepKind.RETIRE_API_KEY and retire.params.key_id == "k-q1"  # type: ignore[union-attr]
    assert rotate.kind is StepKind.ROTATE_API_KEY and retire.id in rotate.depends_on
    assert rotate.params.replaces == "k-q2"  # type: ignore[union-attr]


def test_the_default_key_is_never_rotated_nor_retired() -> None:
    # even a record naming the default key as replaced (hand-edited) is not acted on
    default = replace(
        ours("dydx/mm-alpha/api/default", API, key="k-default"),
        written_at=T0,
        metadata=((META_KEY_ID, "k-default"), (META_REPLACES, "k-other")),
    )
    facts = replace(
        facts_at(T0 + 400 * DAY, quoter_entry("k-q1", written=T0 + 400 * DAY), {"k-q1", "k-other"}),
        api_secrets=(
            ("default", default),
            ("quoter", quoter_entry("k-q1", written=T0 + 400 * DAY)),
        ),
    )
    p = plan_account(spec(api_keys=keys()), facts)
    assert not any(s.kind in (StepKind.ROTATE_API_KEY, StepKind.RETIRE_API_KEY) for s in p.steps)
    forced = plan_account(spec(api_keys=keys()), facts, PlanOptions(rotate=("mm-alpha", "default")))
    assert forced.steps == ()


def test_provision_rotate_rotates_one_key_now_whatever_its_age() -> None:
    facts = replace(
        facts_at(T0 + 3 * DAY, quoter_entry("k-q1"), {"k-q1"}),
        deposited=0,  # a deposit is pending too: rotate leaves it alone
    )
    p = plan_account(spec(api_keys=keys()), facts, PlanOptions(rotate=("mm-alpha", "quoter")))
    (step,) = p.steps
    assert step.kind is StepKind.ROTATE_API_KEY
    assert step.summary == "rotate quoter now: 3 d old, policy 90 d"
    assert StepKind.DEPOSIT in [s.kind for s in plan_account(spec(api_keys=keys()), facts).steps]
    other = plan_account(spec(api_keys=keys()), facts, PlanOptions(rotate=("other", "quoter")))
    assert other.steps == ()


def test_rotate_due_plans_the_rotations_that_are_due_and_nothing_else() -> None:
    facts = replace(facts_at(T0 + 91 * DAY, quoter_entry("k-q1"), {"k-q1"}), deposited=0)
    p = plan_account(spec(api_keys=keys()), facts, PlanOptions(rotation_only=True))
    assert [s.kind for s in p.steps] == [StepKind.ROTATE_API_KEY]
    young = replace(facts, observed_at=T0 + DAY)
    assert plan_account(spec(api_keys=keys()), young, PlanOptions(rotation_only=True)).steps == ()


def test_provision_rotate_of_a_key_not_created_yet_is_blocked() -> None:
    facts = facts_at(T0, VaultEntry(QUOTER, exists=False), set())
    p = plan_account(spec(api_keys=keys()), facts, PlanOptions(rotate=("mm-alpha", "quoter")))
    (step,) = p.steps
    assert step.kind is StepKind.ROTATE_API_KEY and step.blocked
    assert "apply' creates it first" in step.blocked


def test_a_rotation_needs_the_signer() -> None:
    facts = replace(
        facts_at(T0 + 91 * DAY, quoter_entry("k-q1"), {"k-q1"}), signer_error="wrong key"
    )
    (step,) = plan_account(spec(api_keys=keys()), facts).steps
    assert step.blocked and "wrong key" in step.blocked


def manifest_of(account: AccountSpec) -> Manifest:
    network = NetworkSpec(
        "sandbox",
        11155111,
        "http://api",
        "http://rpc",
        "0x3D05aaCd0fED84f65dE0D91e4621298E702911E2",
        "0x7fC9C132268E0E414991449c003DbdB3E73E2059",
        1,
    )
    vault = VaultSpec(address="http://vault", auth=VaultAuth(method="token"))
    return Manifest("provision.yaml", 1, network, vault, (account,))


def test_the_json_plan_carries_each_keys_age_and_next_rotation_and_round_trips() -> None:
    m = manifest_of(spec(api_keys=keys()))
    facts = facts_at(T0 + 91 * DAY, quoter_entry("k-q1"), {"k-q1"})
    plan = make_plan(m, WorldFacts(chain_id=11155111, accounts=(facts,)))
    data = plan.to_dict()
    jsonschema.validate(data, json.loads((SCHEMAS / "plan.schema.json").read_text()))
    quoter = data["accounts"][0]["api_keys"][1]
    assert quoter == {
        "name": "quoter",
        "key": "k-q1",
        "created_at": "2026-01-01T00:00:00Z",
        "age_seconds": 91 * DAY,
        "rotate_after_seconds": 90 * DAY,
        "next_rotation": "2026-04-01T00:00:00Z",
        "previous_key": None,
        "previous_key_retires_at": None,
    }
    assert Plan.from_dict(data) == plan


def test_the_time_facts_were_read_is_not_part_of_their_fingerprint() -> None:
    m = manifest_of(spec(api_keys=keys()))
    one = facts_at(T0, quoter_entry("k-q1"), {"k-q1"})
    later = replace(one, observed_at=T0 + 5)
    a = make_plan(m, WorldFacts(chain_id=11155111, accounts=(one,)))
    b = make_plan(m, WorldFacts(chain_id=11155111, accounts=(later,)))
    assert a.fingerprint == b.fingerprint
    moved = replace(one, api_secrets=(one.api_secrets[0], ("quoter", quoter_entry("k-q9"))))
    assert make_plan(m, WorldFacts(11155111, (moved,))).fingerprint != a.fingerprint


def test_rotate_target_is_checked_against_the_manifest() -> None:
    m = manifest_of(spec(api_keys=keys()))
    assert rotation_target(m, "mm-alpha", "quoter") == ("mm-alpha", "quoter")
    with pytest.raises(ProvisionerError, match="cannot be rotated"):
        rotation_target(m, "mm-alpha", "default")
    with pytest.raises(ProvisionerError, match="no API key 'nope'"):
        rotation_target(m, "mm-alpha", "nope")
    with pytest.raises(ProvisionerError, match="no such account"):
        rotation_target(m, "nobody", "quoter")


def test_rotate_options_are_named_by_differences_and_never_saved_in_a_plan_file() -> None:
    due, one = PlanOptions(rotation_only=True), PlanOptions(rotate=("mm-alpha", "quoter"))
    assert due.differences(PlanOptions()) == ["rotate --due"]
    assert one.differences(PlanOptions()) == ["rotate --account --key"]
    assert PlanOptions(prune_api_keys=True).differences(PlanOptions()) == ["--prune-api-keys"]
    m = manifest_of(spec(api_keys=keys()))
    facts = WorldFacts(
        chain_id=11155111,
        accounts=(replace(facts_at(T0 + 3 * DAY, quoter_entry("k-q1"), {"k-q1"}), deposited=0),),
    )
    made = make_plan(m, facts, one)
    assert [s.kind for s in made.steps()] == [StepKind.ROTATE_API_KEY]
    data = made.to_dict()
    assert "rotate" not in data["options"] and "rotation_only" not in data["options"]
    # read back, it is a plan without the option: planning again gives the deposit too, and
    # apply PLAN refuses it rather than run what was not reviewed
    with pytest.raises(PlanMismatch, match="steps"):
        check_saved("rotate.json", Plan.from_dict(data), make_plan(m, facts))
