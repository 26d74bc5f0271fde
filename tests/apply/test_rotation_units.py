"""Rotation through run_apply on in-memory clients: the order of its stages, what each leaves
behind when the run dies there, and what retirement refuses to delete."""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal

import pytest
from support.apply_fakes import STATE, World, world

from provisioner.apply.events import Event, Finished, PlanReady
from provisioner.apply.executor import execute
from provisioner.apply.run import ApplyRequest, run_apply
from provisioner.clients.dydx import ApiCredentials
from provisioner.journal import Journal, KeyIntent
from provisioner.plan.ages import iso
from provisioner.plan.model import AccountPlan, Action, Plan, Step, StepKind
from provisioner.plan.params import RetireApiKeyParams, RotateApiKeyParams, StepParams
from provisioner.plan.planner import PlanOptions
from provisioner.records import META_KEY_CREATED, META_KEY_ID, META_REPLACES, api_key_secret
from provisioner.session import Session, look

DAY = 86_400


def rotating(rotate_after: int = 90 * DAY, overlap: int = 3600, age: float = 91 * DAY) -> World:
    """An account whose named key "quoter" (key-q1) is stored, listed, and ``age`` old."""
    w = world(deposit="0", api_keys=("default", "quoter"))
    keys = tuple(
        replace(k, rotate_after=rotate_after, rotation_overlap=overlap) if k.name == "quoter" else k
        for k in w.spec.api_keys
    )
    spec = replace(w.spec, api_keys=keys)
    w.conn.manifest = replace(w.conn.manifest, accounts=(spec,))
    w.spec = spec
    creds = ApiCredentials(key="key-q1", secret="canary-q1-secret", passphrase="pq")
    w.dydx.keys[spec.address].add("key-q1")
    path = quoter_path(w)
    w.vault.put_owned(path, api_key_secret(creds, spec.address, "sepolia"), spec.name)
    w.vault.written[path] = time.time() - age
    w.events.clear()
    return w


def quoter_path(w: World) -> str:
    return f"dydx/{w.spec.name}/api/quoter"


def stored_key(w: World) -> str:
    return w.vault.secrets[quoter_path(w)][0]["key"]


def session(w: World) -> Session:
    return Session(w.conn.manifest, (w.spec,), w.conn, parallelism=2)  # type: ignore[arg-type]


def apply(w: World, options: PlanOptions | None = None) -> tuple[int, list[Event]]:
    seen: list[Event] = []
    rc = run_apply(
        session(w),
        ApplyRequest(options=options or PlanOptions(), auto_approve=True),
        report=seen.append,
        approve=lambda _p: False,
    )
    return rc, seen


def planned(w: World, options: PlanOptions | None = None) -> list[str]:
    _, plan = look(session(w), options or PlanOptions())
    return [s.summary for s in plan.steps()]


def test_an_old_key_is_replaced_stored_as_a_new_version_and_the_old_one_kept() -> None:
    w = rotating()
    assert planned(w) == ["rotate quoter: 91 d old, policy 90 d"]
    before = w.vault.secrets[quoter_path(w)][1]
    rc, _ = apply(w)
    assert rc == 0
    new = stored_key(w)
    assert new != "key-q1"
    assert w.vault.secrets[quoter_path(w)][1] == before + 1  # a new version of the same path
    meta = w.vault.metadata[quoter_path(w)]
    assert meta[META_KEY_ID] == new and meta[META_REPLACES] == "key-q1"
    assert abs(time.time() - _epoch(meta[META_KEY_CREATED])) < 5
    assert {"key-q1", new} <= w.dydx.keys[w.spec.address]  # both work during the overlap
    assert w.vault.journal(w.spec.name) == []
    journal = f"{STATE}/journal/{w.spec.name}/api_key-quoter"
    assert [e for e in w.events if "quoter" in e or "create" in e] == [
        f"state write {journal}",  # the intent, before the POST
        "dydx create key-1",
        f"state write {journal}",  # the new id noted
        f"vault metadata {quoter_path(w)}",  # the record of what it replaces
        f"vault write {quoter_path(w)}",  # then the credentials, check-and-set
        f"state delete {journal}",
    ]
    assert planned(w) == []  # quiet during the overlap


def _epoch(text: str) -> float:
    from provisioner.plan.ages import parse_iso

    value = parse_iso(text)
    assert value is not None
    return value


def test_the_first_apply_after_the_overlap_deletes_the_replaced_key() -> None:
    w = rotating(overlap=3600)
    apply(w)
    new = stored_key(w)
    # an hour and three minutes later
    w.vault.metadata[quoter_path(w)][META_KEY_CREATED] = iso(time.time() - 3780) or ""
    assert planned(w) == ["retire the previous quoter key, replaced 1 h 3 min ago"]
    w.events.clear()
    rc, _ = apply(w)
    assert rc == 0
    assert [e for e in w.events if not e.startswith("state")] == ["dydx delete key-q1"]
    assert "key-q1" not in w.dydx.keys[w.spec.address] and new in w.dydx.keys[w.spec.address]
    assert stored_key(w) == new
    assert planned(w) == []


def test_no_overlap_rotates_and_retires_in_one_apply() -> None:
    w = rotating(rotate_after=5, overlap=0, age=6)
    assert planned(w) == [
        "rotate quoter: 6 s old, policy 5 s",
        "retire the previous quoter key key-q1 once the new one is stored (no overlap)",
    ]
    rc, _ = apply(w)
    assert rc == 0
    assert w.dydx.keys[w.spec.address] == {"key-default", stored_key(w)}
    assert planned(w) == []


def test_a_new_key_that_cannot_be_stored_is_deleted_and_the_old_one_left_alone() -> None:
    w = rotating()
    w.vault.fail_writes_to.add(quoter_path(w))
    rc, seen = apply(w)
    assert rc == 1
    (finished,) = [e for e in seen if isinstance(e, Finished)]
    assert "no key is left without its secret" in (finished.failed[0].error or "")
    assert stored_key(w) == "key-q1"
    assert w.dydx.keys[w.spec.address] == {"key-default", "key-q1"}
    assert w.vault.journal(w.spec.name) == []


def test_killed_between_the_record_and_the_data_the_next_apply_deletes_the_unstored_key() -> None:
    w = rotating()
    # what the dead run left: the intent with the created id, the key at dYdX, the record
    # naming it, the data still holding the old key
    journal = Journal(w.vault, STATE)
    intent = KeyIntent(
        w.spec.name, "quoter", quoter_path(w), frozenset(w.dydx.keys[w.spec.address])
    )
    journal.record_key_intent(intent)
    lost = w.dydx.create_api_key(_signer(w)).key
    journal.note_created(intent, lost)
    w.vault.metadata[quoter_path(w)] = {
        META_KEY_ID: lost,
        META_KEY_CREATED: iso(time.time()) or "",
        META_REPLACES: "key-q1",
    }
    w.events.clear()
    rc, _ = apply(w)
    assert rc == 0
    dydx = [e for e in w.events if e.startswith("dydx")]
    assert dydx[:2] == [f"dydx delete {lost}", "dydx create key-2"]  # the orphan settled first
    assert "dydx delete key-q1" not in dydx
    new = stored_key(w)
    assert new not in ("key-q1", lost)  # and the rotation ran again
    assert w.dydx.keys[w.spec.address] == {"key-default", "key-q1", new}
    assert planned(w) == []


def _signer(w: World):  # type: ignore[no-untyped-def]
    from provisioner.signers.local import LocalKeySigner

    return LocalKeySigner(w.private_key)


def step_of(w: World, kind: StepKind, params: StepParams) -> Plan:
    step = Step(
        id=f"{w.spec.name}/{kind.value}/quoter",
        account=w.spec.name,
        kind=kind,
        action=Action.DELETE,
        summary=kind.value,
        reason="test",
        params=params,
    )
    return Plan(
        "unit.yaml",
        "sepolia",
        11155111,
        "sha256:test",
        (AccountPlan(w.spec.name, w.spec.address, (step,)),),
    )


@pytest.mark.parametrize(
    "key_id, why",
    [
        ("key-q1", "the key the destination holds"),
        ("key-default", "the default key"),
        ("key-other", "a key no record names"),
    ],
)
def test_retirement_deletes_only_the_key_the_record_names_as_replaced(
    key_id: str, why: str
) -> None:
    w = rotating()
    w.dydx.keys[w.spec.address].add("key-other")
    w.vault.metadata[quoter_path(w)] = {
        META_KEY_ID: "key-q1",
        META_KEY_CREATED: iso(time.time() - 2 * DAY) or "",
        META_REPLACES: "key-default" if key_id == "key-default" else "key-old",
    }
    params = RetireApiKeyParams(path=quoter_path(w), name="quoter", key_id=key_id, overlap=0)
    (result,) = execute(w.conn, step_of(w, StepKind.RETIRE_API_KEY, params))  # type: ignore[arg-type]
    assert result.failed, why
    assert not [e for e in w.events if e.startswith("dydx delete")], why


def test_retirement_waits_for_the_overlap_even_when_asked_early() -> None:
    w = rotating()
    apply(w)
    params = RetireApiKeyParams(path=quoter_path(w), name="quoter", key_id="key-q1", overlap=3600)
    w.events.clear()
    (result,) = execute(w.conn, step_of(w, StepKind.RETIRE_API_KEY, params))  # type: ignore[arg-type]
    assert result.failed and "within its overlap" in (result.error or "")
    assert "key-q1" in w.dydx.keys[w.spec.address]


def test_a_rotation_planned_against_another_key_than_the_stored_one_is_refused() -> None:
    w = rotating()
    params = RotateApiKeyParams(path=quoter_path(w), name="quoter", version=1, replaces="key-zz")
    (result,) = execute(w.conn, step_of(w, StepKind.ROTATE_API_KEY, params))  # type: ignore[arg-type]
    assert result.failed and "plan again" in (result.error or "")
    assert not [e for e in w.events if e.startswith("dydx create")]


def test_provision_rotate_replaces_a_young_key_and_nothing_else() -> None:
    w = rotating(age=60)
    assert planned(w) == []
    options = PlanOptions(rotate=(w.spec.name, "quoter"))
    assert planned(w, options) == ["rotate quoter now: 1 min old, policy 90 d"]
    rc, seen = apply(w, options)
    assert rc == 0 and stored_key(w) != "key-q1"
    assert isinstance(seen[0], PlanReady)


def test_rotation_writes_count_as_dydx_writes_in_the_executors_first_pass() -> None:
    """They spend the account's budget of 10 writes a minute like any other write at dYdX, so
    the executor opens the account's rate-limit window with them (apply/executor.py)."""
    from provisioner.apply.executor import _split

    w = rotating(rotate_after=5, overlap=0, age=6)
    _, plan = look(session(w), PlanOptions())
    first, rest = _split(plan.steps())
    assert [s.kind for s in first] == [StepKind.ROTATE_API_KEY]
    assert [s.kind for s in rest] == [StepKind.RETIRE_API_KEY]


def test_every_step_kind_has_a_runner() -> None:
    from provisioner.apply.executor import RUNNERS

    assert set(RUNNERS) == set(StepKind)


@pytest.mark.parametrize(
    "args",
    [
        ["rotate"],
        ["rotate", "--account", "a"],
        ["rotate", "--due", "--key", "quoter"],
        ["rotate", "--account", "a", "--key", "quoter", "--shard", "0/2"],
    ],
)
def test_rotate_wants_one_key_or_due(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from provisioner.cli.main import main

    assert main([*args, "-f", "/nonexistent/provision.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: rotate") and "Traceback" not in err


def test_rotate_due_does_the_rotation_and_leaves_every_other_step() -> None:
    w = rotating()
    w.spec = replace(w.spec, deposit=Decimal("5"))
    w.conn.manifest = replace(w.conn.manifest, accounts=(w.spec,))
    everything = planned(w)
    assert len(everything) > 1 and "rotate quoter: 91 d old, policy 90 d" in everything
    rc, _ = apply(w, PlanOptions(rotation_only=True))
    assert rc == 0 and stored_key(w) != "key-q1"
    assert not [e for e in w.events if e.startswith("chain")]  # no approve, no deposit
    assert planned(w) == [s for s in everything if not s.startswith("rotate")]


def test_a_rotation_on_mainnet_needs_its_confirmation_and_deposits_nothing() -> None:
    """`provision rotate` is an apply: money's mainnet rule holds (its confirmation; a deposit
    ceiling, which rotate sets to 0), and the ceiling holds where money moves."""
    from provisioner.apply.guardrails import GuardrailRefused
    from provisioner.cli.commands.rotate import NO_DEPOSIT

    w = rotating()
    network = replace(w.conn.manifest.network, chain_id=1)
    w.conn.manifest = replace(w.conn.manifest, network=network)
    options = PlanOptions(rotate=(w.spec.name, "quoter"))

    def rotate(confirm: bool) -> int:
        request = ApplyRequest(
            options=options,
            auto_approve=True,
            max_deposit=NO_DEPOSIT,
            max_deposit_source="rotate",
            confirm_mainnet=confirm,
        )
        return run_apply(session(w), request, report=lambda _e: None, approve=lambda _p: False)

    with pytest.raises(GuardrailRefused, match="every apply needs its confirmation"):
        rotate(confirm=False)
    assert stored_key(w) == "key-q1"
    assert rotate(confirm=True) == 0
    assert stored_key(w) != "key-q1"


def test_a_saved_plan_with_a_rotation_is_applied_though_its_key_grew_older() -> None:
    """`apply PLAN` plans again at the saved plan's own time: the rotation's summary (its
    age) is what was reviewed, while the facts must still be the same (the fingerprint)."""
    import json

    w = rotating(rotate_after=5, overlap=3600, age=6)
    _, plan = look(session(w), PlanOptions())
    saved = Plan.from_dict(json.loads(plan.to_json()))
    assert saved.observed_at is not None
    assert [s.summary for s in saved.steps()] == ["rotate quoter: 6 s old, policy 5 s"]
    time.sleep(1.1)
    assert planned(w) == ["rotate quoter: 7 s old, policy 5 s"]  # now, it reads otherwise
    request = ApplyRequest(options=saved.options, saved=saved, saved_name="plan.json")
    seen: list[Event] = []
    assert run_apply(session(w), request, report=seen.append, approve=lambda _p: False) == 0
    assert stored_key(w) != "key-q1"
    (shown,) = [e.plan for e in seen if isinstance(e, PlanReady)]
    assert [s.summary for s in shown.steps()] == ["rotate quoter: 6 s old, policy 5 s"]
