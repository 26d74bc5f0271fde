"""Step params: typed per kind, one wire form, round-tripped through a saved plan unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from provisioner.money import deposit_need, in_flight
from provisioner.plan.ages import KeyAge
from provisioner.plan.model import PARAMS, AccountPlan, Action, Plan, Step, StepKind
from provisioner.plan.params import (
    ApiKeyParams,
    ApproveParams,
    DeleteApiKeyParams,
    DepositParams,
    OnboardParams,
    RecordAccountParams,
    RegisterParams,
    RetireApiKeyParams,
    RotateApiKeyParams,
    StarkKeyParams,
    StepParams,
    to_wire,
)
from provisioner.plan.saved import SavedPlanError, load_saved_plan

REPO = Path(__file__).resolve().parents[2]

ONE_OF_EACH: list[tuple[StepKind, StepParams]] = [
    (StepKind.STARK_KEY, StarkKeyParams(path="d/a/stark", version=3, dydx_user="absent")),
    (StepKind.STARK_KEY, StarkKeyParams(path="d/a/stark")),  # a blocked one: no version
    (StepKind.ONBOARD, OnboardParams()),
    (StepKind.RECORD_ACCOUNT, RecordAccountParams(path="d/a/stark", version=1)),
    (StepKind.REGISTER, RegisterParams()),
    (StepKind.APPROVE, ApproveParams(amount_base_units=2**256 - 1)),
    (StepKind.DEPOSIT, DepositParams(amount_base_units=8_200_000, target_base_units=10_000_001)),
    (StepKind.API_KEY, ApiKeyParams(path="d/a/api/default", name="default", version=0)),
    (StepKind.REPLACE_API_KEY, ApiKeyParams(path="d/a/api/h", name="h")),
    (StepKind.DELETE_API_KEY, DeleteApiKeyParams(key_id="k-old")),
    (
        StepKind.ROTATE_API_KEY,
        RotateApiKeyParams(path="d/a/api/q", name="q", version=2, replaces="k-q1"),
    ),
    (
        StepKind.RETIRE_API_KEY,
        RetireApiKeyParams(path="d/a/api/q", name="q", key_id="k-q0", overlap=3600),
    ),
]


def plan_with(pairs: list[tuple[StepKind, StepParams]]) -> Plan:
    steps = tuple(
        Step(
            id=f"a/{kind.value}/{i}",
            account="a",
            kind=kind,
            action=Action.CREATE,
            summary="s",
            reason="r",
            params=params,
        )
        for i, (kind, params) in enumerate(pairs)
    )
    return Plan(
        manifest="m.yaml",
        network="sepolia",
        chain_id=11155111,
        fingerprint="sha256:" + "0" * 64,
        accounts=(AccountPlan("a", "0x" + "11" * 20, steps, api_keys=AGES),),
    )


AGES = (
    KeyAge("default", "k-d", 1_700_000_000.0, 86_400.0, None, None),
    KeyAge(
        "q", "k-q1", 1_700_000_000.0, 86_400.0, 7_776_000, 1_707_776_000.0, "k-q0", 1_700_003_600.0
    ),
    KeyAge("h", None, None, None, 3_600, None),
)


def test_every_kind_round_trips_through_a_saved_plan(tmp_path: Path) -> None:
    plan = plan_with(ONE_OF_EACH)
    path = tmp_path / "plan.json"
    path.write_text(plan.to_json())
    assert load_saved_plan(str(path)) == plan
    assert {k for k, _ in ONE_OF_EACH} == set(PARAMS)


def test_the_wire_form_is_the_plan_schemas_flat_strings() -> None:
    wire = plan_with(ONE_OF_EACH).to_dict()
    deposit = wire["accounts"][0]["steps"][6]["params"]
    assert deposit == {"amount": "8200000", "target": "10000001"}  # exact, in base units
    assert wire["accounts"][0]["steps"][9]["params"] == {"key": "k-old"}
    assert wire["accounts"][0]["steps"][1]["params"] == {"path": "d/a/stark"}
    schema_file = next(
        p for d in ("schemas", "provisioner") for p in (REPO / d).rglob("plan.schema.json")
    )
    jsonschema.validate(wire, json.loads(schema_file.read_text()))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"amount": "12.5", "target": "20"}, "invalid literal"),
        ({"amount": "-1", "target": "20"}, "expected base units >= 0"),
        ({"target": "20"}, "'amount' missing"),
        ({"amount": 5, "target": "20"}, "'amount' is not a string"),
    ],
)
def test_a_tampered_param_is_refused_naming_the_file(
    tmp_path: Path, params: dict[str, object], expected: str
) -> None:
    data = plan_with([(StepKind.DEPOSIT, DepositParams(1, 1))]).to_dict()
    data["accounts"][0]["steps"][0]["params"] = params
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SavedPlanError, match=expected) as caught:
        load_saved_plan(str(path))
    assert str(caught.value).startswith(f"{path}: not a plan saved by 'provision plan --out'")


def test_a_step_refuses_params_of_another_kind() -> None:
    with pytest.raises(TypeError, match="deposit takes DepositParams"):
        plan_with([(StepKind.DEPOSIT, ApproveParams(1))])


def test_to_wire_leaves_out_what_a_step_does_not_have() -> None:
    assert to_wire(ApiKeyParams(path="p", name="n")) == {"path": "p", "name": "n"}
    assert to_wire(OnboardParams()) == {}


def test_deposit_need_only_ever_tops_up() -> None:
    assert deposit_need(10, 3, 2) == 5
    assert deposit_need(10, 10, 0) == 0
    assert deposit_need(10, 8, 5) == 0  # above the target: never a withdrawal
    assert in_flight([("deposit", 4, "pending"), ("deposit", 3, "dropped")]) == 7
    assert in_flight([("deposit", 4, "mined"), ("approve", 9, "pending")]) == 0
