"""Issue #6: changing the manifest after a converged apply. Deposits only ever top up by the exact
difference; a lower target is reported, never acted on; API keys dropped from the manifest stay at
dYdX until --prune-api-keys, which never deletes the default key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.apply_runs import (
    cli,
    deposited,
    dydx3_client,
    emulator_stats,
    make_accounts,
    nonces,
    read_secret,
    versions,
    write_manifest,
)

from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox


def _listed_keys(sandbox: SandboxInfo, api_secret: dict[str, str]) -> set[str]:
    bot = dydx3_client(sandbox, api_secret)
    return {k["key"] for k in bot.private.get_api_keys().data["apiKeys"]}


def _plan_json(capsys, manifest: Path, *extra: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    res = cli(capsys, "plan", "-f", str(manifest), "--format", "json", *extra)
    assert res.rc == 0, res.text
    return json.loads(res.out)


def test_deposit_changes_and_api_key_pruning(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    [acct] = make_accounts(
        sandbox, [{"name": "delta", "deposit": "1.5", "api_keys": ["default", "hedger", "quoter"]}]
    )
    m = write_manifest(tmp_path, [acct])
    f = str(m.path)
    first = cli(capsys, "apply", "-f", f, "--auto-approve")
    assert first.rc == 0, first.text
    stark = read_secret(sandbox, m.stark_path("delta"))
    assert stark is not None
    stark_public = int(stark[0]["public_key"], 16)
    position = int(stark[0]["position_id"])
    assert deposited(sandbox, stark_public, position) == 1_500_000

    # -- raise: exactly the difference ----------------------------------------------------
    acct.deposit = "2.750001"
    m.rewrite()
    plan = _plan_json(capsys, m.path)
    [dep] = [s for s in plan["accounts"][0]["steps"] if s["kind"] == "deposit"]
    assert dep["params"]["amount"] == "1250001"
    assert dep["params"]["target"] == "2750001"
    assert {s["kind"] for s in plan["accounts"][0]["steps"]} == {"approve", "deposit"}
    raised = cli(capsys, "apply", "-f", f, "--auto-approve")
    assert raised.rc == 0, raised.text
    assert deposited(sandbox, stark_public, position) == 2_750_001

    # -- lower: reported, nothing done ----------------------------------------------------
    acct.deposit = "1"
    m.rewrite()
    lowered = cli(capsys, "plan", "-f", f, "--detailed-exitcode")
    assert lowered.rc == 0, lowered.text
    assert "already deposited" in lowered.out and "withdrawals are never made" in lowered.out
    before = nonces(sandbox, [acct.address])
    writes = emulator_stats(sandbox)["writes"]
    noop = cli(capsys, "apply", "-f", f, "--auto-approve")
    assert noop.rc == 0, noop.text
    assert nonces(sandbox, [acct.address]) == before
    assert emulator_stats(sandbox)["writes"] == writes
    assert deposited(sandbox, stark_public, position) == 2_750_001

    # -- drop an API key from the manifest: left at dYdX, the plan says so ----------------
    default = read_secret(sandbox, m.api_path("delta", "default"))
    quoter = read_secret(sandbox, m.api_path("delta", "quoter"))
    hedger = read_secret(sandbox, m.api_path("delta", "hedger"))
    assert default and quoter and hedger
    default_id, quoter_id, hedger_id = (r[0]["key"] for r in (default, quoter, hedger))
    assert {default_id, quoter_id, hedger_id} <= _listed_keys(sandbox, default[0])
    acct.api_keys = ["default", "hedger"]
    m.rewrite()
    kept = cli(capsys, "plan", "-f", f, "--detailed-exitcode")
    assert kept.rc == 0, kept.text
    assert "--prune-api-keys" in kept.out and quoter_id in kept.out
    applied = cli(capsys, "apply", "-f", f, "--auto-approve")
    assert applied.rc == 0, applied.text
    assert quoter_id in _listed_keys(sandbox, default[0])

    # -- prune: the dropped key goes, never the default key -------------------------------
    pruning = _plan_json(capsys, m.path, "--prune-api-keys")
    deletes = [s for s in pruning["accounts"][0]["steps"] if s["kind"] == "delete_api_key"]
    assert [s["params"]["key"] for s in deletes] == [quoter_id]
    pruned = cli(capsys, "apply", "-f", f, "--prune-api-keys", "--auto-approve")
    assert pruned.rc == 0, pruned.text
    listed = _listed_keys(sandbox, default[0])
    assert quoter_id not in listed
    assert {default_id, hedger_id} <= listed
    assert cli(capsys, "plan", "-f", f, "--prune-api-keys", "--detailed-exitcode").rc == 0

    # -- a manifest without the default key: its id is derived, so it is never pruned -------
    acct.api_keys = ["hedger"]
    m.rewrite()
    unnamed = _plan_json(capsys, m.path, "--prune-api-keys")
    deletes = [s for s in unnamed["accounts"][0]["steps"] if s["kind"] == "delete_api_key"]
    assert deletes == []
    vault_before = versions(sandbox, m.destinations())
    res = cli(capsys, "apply", "-f", f, "--prune-api-keys", "--auto-approve")
    assert res.rc == 0, res.text
    assert default_id in _listed_keys(sandbox, hedger[0])
    assert versions(sandbox, m.destinations()) == vault_before
