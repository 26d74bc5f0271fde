"""`show` and `validate` work with no environment and no network, as a pull request's lint job
runs them; large plans group accounts with the same steps; revert reasons are decoded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from eth_abi import encode
from support.plans import fleet_plan

from provisioner.clients.chain.errors import RpcError
from provisioner.plan.model import StepKind
from provisioner.plan.params import UNLIMITED_ALLOWANCE, ApproveParams
from provisioner.plan.render import COMPACT_FROM, render_text

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = ["examples/sandbox.yaml", "examples/mainnet.yaml", "examples/ci/provision.yaml"]


def _bare(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``provision`` with an empty environment: no VAULT_ADDR, no RPC, no proxy, no HOME."""
    return subprocess.run(
        [sys.executable, "-m", "provisioner.cli.main", *args],
        env={"PYTHONPATH": str(REPO), "PATH": os.defpath},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("example", EXAMPLES)
def test_validate_needs_no_environment(example: str) -> None:
    result = _bare("validate", "-f", example)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "plan will need" in result.stdout
    assert "ETH_RPC_URL at plan time" in result.stderr
    assert "VAULT_ADDR at plan time" in result.stderr
    assert "error" not in result.stderr


def test_strict_env_keeps_the_errors() -> None:
    result = _bare("validate", "-f", "examples/sandbox.yaml", "--strict-env")
    assert result.returncode == 1
    assert "takes its api_url from DYDX_API_URL, which is not set" in result.stderr
    assert "environment variable VAULT_ADDR is not set" in result.stderr


def test_validate_github_annotations(tmp_path: Path) -> None:
    broken = tmp_path / "provision.yaml"
    text = (
        (REPO / "examples/sandbox.yaml").read_text().replace('deposit: "8.2"', 'deposit: "8.2.1"')
    )
    broken.write_text(text)
    result = _bare("validate", "-f", str(broken), "--format", "github")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    line_no = next(i for i, t in enumerate(text.splitlines(), 1) if '"8.2.1"' in t)
    errors = [x for x in lines if x.startswith("::error ")]
    assert len(errors) == 1
    assert errors[0].startswith(f"::error file={broken},line={line_no},col=")
    warnings = [x for x in lines if x.startswith("::warning ")]
    assert any("ETH_RPC_URL at plan time" in w and ",line=14,col=10::" in w for w in warnings)


def test_validate_json_lists_warnings() -> None:
    result = _bare("validate", "-f", "examples/sandbox.yaml", "--format", "json")
    document = json.loads(result.stdout)
    assert document["valid"] is True and document["summary"]["accounts"] == 3
    assert {w["variable"] for w in document["warnings"]} == {
        "VAULT_ADDR",
        "ETH_RPC_URL",
        "DYDX_API_URL",
    }


def test_the_example_workflow_lints_with_annotations() -> None:
    workflow = (REPO / "examples/ci/github-actions.yml").read_text()
    assert 'provision validate -f "$MANIFEST" --format github' in workflow


def test_show_renders_a_saved_plan_offline(tmp_path: Path) -> None:
    plan = fleet_plan(["mm-alpha", "mm-beta"])
    saved = tmp_path / "plan.json"
    saved.write_text(plan.to_json())
    text = _bare("show", str(saved), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert text.stdout == render_text(plan)
    as_json = _bare("show", str(saved), "--format", "json", cwd=tmp_path)
    assert json.loads(as_json.stdout) == plan.to_dict()
    markdown = _bare("show", str(saved), "--format", "markdown", cwd=tmp_path)
    assert markdown.stdout.startswith("### dydx-provisioner plan: `fleet.yaml` on `sandbox`")
    missing = _bare("show", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert (
        missing.returncode == 1
        and missing.stderr == f"error: {tmp_path / 'nope.json'}: no such plan file\n"
    )


def test_a_large_plan_groups_accounts_with_the_same_steps() -> None:
    names = [f"mm-{i:03d}" for i in range(COMPACT_FROM + 10)] + ["odd"]
    plan = fleet_plan(names, notes={"mm-007": "drift: deposit short"}, usdc={"odd": 40})
    text = render_text(plan)
    same = len(names) - 2
    assert (
        f"  {same} accounts: derive the STARK key, onboard, register, approve 25 USDC, "
        "deposit 25 USDC, default API key\n" in text
    )
    # the ones that differ, in full
    assert "  mm-007 (0x" in text and "# warning: drift: deposit short" in text
    assert "  odd (0x" in text and "    + approve 40 USDC" in text
    assert "mm-042" not in text  # one of the grouped, named only in the count
    assert text.count("why:") == 12
    assert text.endswith(f"Plan: {6 * len(names)} to add, 0 to change, 0 blocked.\n")
    # small plans stay in full unless asked
    small = fleet_plan(["a", "b", "c"])
    assert render_text(small).count("why:") == 18
    assert "3 accounts: derive the STARK key" in render_text(small, compact=True)


def test_a_grouped_plan_names_an_unlimited_allowance_without_its_number() -> None:
    """`allowance: max` approves 2**256-1 base units: no USDC amount can be printed for it
    (it made the compact renderer raise decimal.InvalidOperation)."""
    plan = fleet_plan(["a", "b", "c"])
    unlimited = ApproveParams(amount_base_units=UNLIMITED_ALLOWANCE)
    accounts = tuple(
        replace(
            acc,
            steps=tuple(
                replace(s, params=unlimited) if s.kind is StepKind.APPROVE else s for s in acc.steps
            ),
        )
        for acc in plan.accounts
    )
    text = render_text(replace(plan, accounts=accounts), compact=True)
    assert "3 accounts: derive the STARK key, onboard, register, approve unlimited USDC," in text


def _error_string(reason: str) -> bytes:
    return bytes.fromhex("08c379a0") + encode(["string"], [reason])


@pytest.mark.parametrize(
    ("message", "data", "reason"),
    [
        # the payload as data, the usual case
        ("execution reverted", "0x" + _error_string("ERC20: nope").hex(), "ERC20: nope"),
        # a node that put the payload's bytes into its message, read as text
        (
            "execution reverted: " + _error_string("ERC20: transfer amount exceeds allowance").decode("latin-1"),
            None,
            "ERC20: transfer amount exceeds allowance",
        ),
        (
            "execution reverted: " + _error_string("ERC20: transfer amount exceeds allowance").decode("utf-8", "replace"),
            None,
            "ERC20: transfer amount exceeds allowance",
        ),
        ("execution reverted: 0x" + _error_string("paused").hex(), None, "paused"),
        ("execution reverted", "0x4e487b71" + "00" * 31 + "11", "Panic(0x11): arithmetic overflow or underflow"),
        ("execution reverted", "0x4e487b71" + "00" * 31 + "32", "Panic(0x32): array index out of bounds"),
        ("execution reverted: plain words", None, "plain words"),
        ("execution reverted", None, ""),
    ],
)  # fmt: skip
def test_revert_reasons_are_decoded(message: str, data: str | None, reason: str) -> None:
    found = RpcError("eth_estimateGas", 3, message, {"data": data} if data else None).revert_reason
    assert found == reason
    assert found.isprintable()
