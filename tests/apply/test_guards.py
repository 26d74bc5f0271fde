"""What the reconciler must not do: overwrite foreign Vault data, act without a signer, act on the
wrong chain, deposit over the ceiling, or act without confirmation when there is no terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.apply_runs import (
    MOUNT,
    cli,
    cli_subprocess,
    emulator_stats,
    make_accounts,
    nonces,
    read_secret,
    vault,
    versions,
    write_manifest,
)

from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox

FOREIGN = {"note": "hand-written by an operator", "private_key": "not-ours"}


def _nothing_written(sandbox: SandboxInfo, m, before_writes: int, before_nonces: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    assert emulator_stats(sandbox)["writes"] == before_writes, "the emulator saw a write"
    assert nonces(sandbox, [a.address for a in m.accounts]) == before_nonces, (
        "a transaction went out"
    )
    assert all(v is None for v in versions(sandbox, m.destinations()).values()), "Vault was written"


def test_foreign_secret_is_a_conflict_and_left_untouched(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    owned_stark, owned_key, clean = make_accounts(
        sandbox,
        [
            {"name": "c-stark", "deposit": "1"},
            {"name": "c-key", "deposit": "1", "api_keys": ["default", "hedger"]},
            {"name": "c-clean", "deposit": "1"},
        ],
    )
    m = write_manifest(tmp_path, [owned_stark, owned_key, clean])
    kv = vault(sandbox).secrets.kv.v2
    foreign_paths = [m.stark_path("c-stark"), m.api_path("c-key", "hedger")]
    for path in foreign_paths:
        kv.create_or_update_secret(path=path, secret=FOREIGN, mount_point=MOUNT)
    foreign_before = {p: read_secret(sandbox, p) for p in foreign_paths}

    plan = cli(capsys, "plan", "-f", str(m.path), "--detailed-exitcode")
    assert plan.rc == 2, plan.text
    assert plan.out.count("conflict:") >= 2
    for path in foreign_paths:
        assert path in plan.out
    as_json = json.loads(cli(capsys, "plan", "-f", str(m.path), "--format", "json").out)
    by_name = {a["name"]: a for a in as_json["accounts"]}
    needs_stark = [s for s in by_name["c-stark"]["steps"] if s["kind"] != "approve"]
    assert all(s["blocked"] for s in needs_stark), "every step needs the STARK key"
    [hedger] = [s for s in by_name["c-key"]["steps"] if s["id"] == "c-key/api_key/hedger"]
    assert hedger["blocked"] and "conflict" in hedger["blocked"]
    assert not any(s["blocked"] for s in by_name["c-clean"]["steps"])

    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    # blocked steps are not failures: the other accounts converge and the run succeeds
    assert res.rc == 0, res.text
    for path in foreign_paths:
        assert read_secret(sandbox, path) == foreign_before[path], f"{path} was touched"
    assert read_secret(sandbox, m.stark_path("c-clean")) is not None
    assert read_secret(sandbox, m.stark_path("c-key")) is not None
    assert read_secret(sandbox, m.api_path("c-key", "default")) is not None
    again = json.loads(cli(capsys, "plan", "-f", str(m.path), "--format", "json").out)
    remaining = {a["name"]: [s["id"] for s in a["steps"]] for a in again["accounts"]}
    assert remaining["c-clean"] == []
    assert remaining["c-key"] == ["c-key/api_key/hedger"]
    assert again["summary"]["add"] == again["summary"]["change"] == 0


def test_no_approve_for_a_deposit_that_is_blocked(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "c-approve", "deposit": "1"}])
    m = write_manifest(tmp_path, [acct])
    vault(sandbox).secrets.kv.v2.create_or_update_secret(
        path=m.stark_path("c-approve"), secret=FOREIGN, mount_point=MOUNT
    )
    plan = json.loads(cli(capsys, "plan", "-f", str(m.path), "--format", "json").out)
    [deposit] = [s for s in plan["accounts"][0]["steps"] if s["kind"] == "deposit"]
    [approve] = [s for s in plan["accounts"][0]["steps"] if s["kind"] == "approve"]
    assert deposit["blocked"]
    assert approve["blocked"], "approve runs although the deposit it is for is blocked"


def test_import_only_account_is_blocked_not_failed(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "imported", "deposit": "3", "signer": False}])
    m = write_manifest(tmp_path, [acct])
    plan = cli(capsys, "plan", "-f", str(m.path), "--format", "json")
    assert plan.rc == 0, plan.text
    steps = json.loads(plan.out)["accounts"][0]["steps"]
    assert steps, "a fresh import-only account still has steps to show"
    direct = [s for s in steps if not s["blocked"].startswith("waits for")]
    assert direct and all("no signer" in s["blocked"] for s in direct)
    assert all(s["blocked"] for s in steps)
    text = cli(capsys, "plan", "-f", str(m.path), "--detailed-exitcode")
    assert text.rc == 2 and "import-only" in text.out

    writes, before = emulator_stats(sandbox)["writes"], nonces(sandbox, [acct.address])
    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 0, res.text
    _nothing_written(sandbox, m, writes, before)


def test_wrong_chain_id_stops_before_anything(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "wrong-chain", "deposit": "1"}])
    network = {
        "name": "not-mainnet",
        "chain_id": 1,
        "api_url": "${DYDX_API_URL}",
        "rpc_url": "${ETH_RPC_URL}",
    }
    m = write_manifest(tmp_path, [acct], network=network)
    writes, before = emulator_stats(sandbox)["writes"], nonces(sandbox, [acct.address])
    for args in (("plan",), ("apply", "--auto-approve", "--confirm-mainnet")):
        res = cli(capsys, *args, "-f", str(m.path))
        assert res.rc == 1, res.text
        numbers = set(re.findall(r"\b\d+\b", res.err))
        assert {"11155111", "1"} <= numbers, res.err  # names both chain ids
    _nothing_written(sandbox, m, writes, before)


def test_deposit_ceiling_stops_before_any_write(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    big, small = make_accounts(
        sandbox, [{"name": "big", "deposit": "30.000001"}, {"name": "small", "deposit": "20"}]
    )
    m = write_manifest(tmp_path, [big, small], max_deposit="50")
    writes, before = (
        emulator_stats(sandbox)["writes"],
        nonces(sandbox, [big.address, small.address]),
    )
    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 1, res.text
    assert "max_deposit" in res.err and "50.000001" in res.err and "nothing was done" in res.err
    _nothing_written(sandbox, m, writes, before)

    (tmp_path / "b").mkdir()
    m2 = write_manifest(tmp_path / "b", [big, small])
    res = cli(capsys, "apply", "-f", str(m2.path), "--auto-approve", "--max-deposit", "50")
    assert res.rc == 1, res.text
    assert "--max-deposit" in res.err
    _nothing_written(sandbox, m2, writes, before)
    # one account alone fits under the ceiling
    res = cli(capsys, "plan", "-f", str(m2.path), "--target", "small", "--format", "json")
    assert [a["name"] for a in json.loads(res.out)["accounts"]] == ["small"]


def test_apply_without_terminal_refuses(sandbox_env: SandboxInfo, tmp_path: Path) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "no-tty", "deposit": "1"}])
    m = write_manifest(tmp_path, [acct])
    writes, before = emulator_stats(sandbox)["writes"], nonces(sandbox, [acct.address])
    res = cli_subprocess(sandbox, "apply", "-f", str(m.path))
    assert res.rc == 1, res.text
    assert "--auto-approve" in res.err and "terminal" in res.err
    assert "Traceback" not in res.err
    _nothing_written(sandbox, m, writes, before)


def test_a_user_onboarded_after_the_look_is_found_by_dydxs_409(
    sandbox: SandboxInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The onboard step asks no users/exists first: POST /v3/onboarding is the check. A user
    that appeared between the look and the step (same Ethereum key, so the same STARK key) is
    read back, compared and recorded; nothing is created twice."""
    from dydx3 import Client

    from provisioner.apply.executor import execute
    from provisioner.cli.main import build_parser
    from provisioner.cli.runtime import session_from_args
    from provisioner.networks import SEPOLIA
    from provisioner.plan.params import StarkKeyParams
    from provisioner.plan.planner import PlanOptions
    from provisioner.session import look

    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    (racer,) = make_accounts(sandbox, [{"name": "racer", "deposit": "0"}])
    m = write_manifest(tmp_path, [racer])
    run = session_from_args(build_parser().parse_args(["apply", "-f", str(m.path)]))
    _, plan = look(run, PlanOptions())
    (stark_step,) = [s for s in plan.accounts[0].steps if s.kind.value == "stark_key"]
    assert isinstance(stark_step.params, StarkKeyParams)
    assert stark_step.params.dydx_user == "absent"
    assert any(s.kind.value == "onboard" for s in plan.accounts[0].steps)

    other = Client(
        host=sandbox.api_url, network_id=SEPOLIA.chain_id, eth_private_key=racer.private_key
    )
    keys = other.onboarding.derive_stark_key()
    other.onboarding.create_user(
        stark_public_key=keys["public_key"],
        stark_public_key_y_coordinate=keys["public_key_y_coordinate"],
    )
    onboardings = emulator_stats(sandbox)["requests"]["POST /v3/onboarding"]

    (result,) = execute(run.conn, plan)
    assert result.failed is None, result.error
    assert emulator_stats(sandbox)["requests"]["POST /v3/onboarding"] == onboardings + 1  # the 409
    stored = read_secret(sandbox, m.stark_path("racer"))
    assert stored is not None
    assert int(stored[0]["public_key"], 16) == int(keys["public_key"], 16)
    assert stored[0]["position_id"]
    again = cli_subprocess(sandbox, "plan", "-f", str(m.path), "--detailed-exitcode")
    assert again.rc == 0, again.text
