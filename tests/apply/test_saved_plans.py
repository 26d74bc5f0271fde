"""Saved plans: `plan --out` then `apply PLAN` without --auto-approve; a plan whose facts changed is
refused as stale; no secret ever lands in a plan file or any output; --target and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.apply_runs import (
    assert_no_secret,
    cli,
    cli_subprocess,
    emulator_stats,
    make_accounts,
    nonces,
    read_secret,
    secret_values,
    set_usdc,
    versions,
    write_manifest,
)

from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox


def test_saved_plan_round_trip_stale_and_secret_free(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    one, two = make_accounts(
        sandbox,
        [
            {"name": "saved-one", "deposit": "2", "api_keys": ["default", "hedger"]},
            {"name": "saved-two", "deposit": "0.000001"},
        ],
    )
    m = write_manifest(tmp_path, [one, two])
    f = str(m.path)
    outputs: dict[str, str] = {}

    # --detailed-exitcode and --target
    pending = cli(capsys, "plan", "-f", f, "--detailed-exitcode")
    assert pending.rc == 2, pending.text
    targeted = cli(capsys, "plan", "-f", f, "--target", "saved-two", "--format", "json")
    assert [a["name"] for a in json.loads(targeted.out)["accounts"]] == ["saved-two"]
    unknown = cli(capsys, "plan", "-f", f, "--target", "nobody")
    assert unknown.rc == 1 and "nobody" in unknown.err

    # a targeted saved plan applies without --auto-approve (no terminal needed) and only to it
    plan_two = tmp_path / "two.plan.json"
    saved = cli(capsys, "plan", "-f", f, "--target", "saved-two", "--out", str(plan_two))
    assert saved.rc == 0, saved.text
    outputs["plan --out stdout"] = saved.out + saved.err
    res = cli_subprocess(sandbox, "apply", "-f", f, str(plan_two))
    assert res.rc == 0, res.text
    outputs["apply PLAN (subprocess)"] = res.out + res.err
    assert read_secret(sandbox, m.stark_path("saved-two")) is not None
    assert read_secret(sandbox, m.stark_path("saved-one")) is None, "--target leaked"
    assert nonces(sandbox, [one.address])[one.address] == 0

    # stale: the wallet's USDC changed between plan and apply
    plan_one = tmp_path / "one.plan.json"
    assert cli(capsys, "plan", "-f", f, "--target", "saved-one", "--out", str(plan_one)).rc == 0
    set_usdc(sandbox, [one.address], 500 * 10**6)
    writes, before = emulator_stats(sandbox)["writes"], nonces(sandbox, [one.address])
    stale = cli(capsys, "apply", "-f", f, str(plan_one))
    assert stale.rc == 1, stale.text
    assert "stale" in stale.err
    assert emulator_stats(sandbox)["writes"] == writes
    assert nonces(sandbox, [one.address]) == before
    assert all(v is None for v in versions(sandbox, [m.stark_path("saved-one")]).values())

    # a fresh plan for everything applies, then a saved plan from before a change is stale
    plan_all = tmp_path / "all.plan.json"
    assert cli(capsys, "plan", "-f", f, "--out", str(plan_all)).rc == 0
    applied = cli(capsys, "apply", "-f", f, str(plan_all))
    assert applied.rc == 0, applied.text
    outputs["apply PLAN"] = applied.out + applied.err
    assert cli(capsys, "plan", "-f", f, "--detailed-exitcode").rc == 0
    reapplied = cli(capsys, "apply", "-f", f, str(plan_all))
    assert reapplied.rc == 1 and "stale" in reapplied.err, reapplied.text

    one.deposit = "3"
    m.rewrite()
    plan_raise = tmp_path / "raise.plan.json"
    assert cli(capsys, "plan", "-f", f, "--out", str(plan_raise)).rc == 0
    two.deposit = "0.5"
    m.rewrite()
    assert cli(capsys, "apply", "-f", f, "--target", "saved-two", "--auto-approve").rc == 0
    # saved-two changed in between; the saved plan covered both accounts
    moved = cli(capsys, "apply", "-f", f, str(plan_raise))
    assert moved.rc == 1 and "stale" in moved.err, moved.text

    # every secret written for these accounts is absent from every file and output
    for fmt in ("text", "json", "markdown"):
        res = cli(capsys, "plan", "-f", f, "--format", fmt)
        outputs[f"plan --format {fmt}"] = res.out + res.err
    status = cli(capsys, "status", "-f", f, "--format", "json")
    outputs["status"] = status.out + status.err
    verbose = cli(capsys, "-v", "apply", "-f", f, "--auto-approve")
    assert verbose.rc == 0, verbose.text
    outputs["apply -v"] = verbose.out + verbose.err
    secrets = secret_values(sandbox, m)
    assert len(secrets) == 2 + 2 + 3 * 2
    for path in (plan_two, plan_one, plan_all, plan_raise):
        assert_no_secret(path.read_text(), secrets, path.name)
        json.loads(path.read_text())
    for where, text in outputs.items():
        assert_no_secret(text, secrets, where)
