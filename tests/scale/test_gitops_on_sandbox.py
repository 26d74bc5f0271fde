"""Issue #9 "done when", on the sandbox: two shards applied at once converge 50 accounts with no
conflict and no double work; overlapping runs never share an account; status reports them; a
nightly-drift plan exits 0 on the converged state and 2, naming each, after changes made behind
the tool's back (an API key deleted at dYdX with the official client, a secret removed from Vault).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from support.apply_runs import (
    MOUNT,
    PROVISION,
    REPO,
    Manifest,
    Result,
    deposited,
    emulator_stats,
    make_accounts,
    nonces,
    read_secret,
    vault,
    write_manifest,
)

from provisioner.money import to_base_units
from provisioner.sandbox.control import SandboxInfo
from provisioner.session import shard_of

pytestmark = pytest.mark.sandbox

ACCOUNTS = 50
DEPOSIT = "5.5"
KEYS = ["default", "bot"]
TXS_PER_ACCOUNT = 3  # registerUser, approve, deposit


def _env(sandbox: SandboxInfo) -> dict[str, str]:
    return {**os.environ, **sandbox.env(), "NO_COLOR": "1"}


def _start(sandbox: SandboxInfo, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PROVISION, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(sandbox),
        cwd=REPO,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 150) -> Result:
    out, err = proc.communicate(timeout=timeout)
    return Result(proc.returncode, out, err)


def _provision(sandbox: SandboxInfo, *args: str) -> Result:
    return _finish(_start(sandbox, *args))


def _requests(sandbox: SandboxInfo) -> dict[str, int]:
    return dict(emulator_stats(sandbox)["requests"])


def _delta(after: dict[str, int], before: dict[str, int], route: str) -> int:
    return after.get(route, 0) - before.get(route, 0)


@dataclass
class Converged:
    manifest: Manifest
    runs: list[Result]
    requests_before: dict[str, int]
    requests_after: dict[str, int]
    nonces: dict[str, int]


@pytest.fixture(scope="module")
def converged(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Converged:
    """50 fresh accounts applied by two shards at once, as two CI runners would."""
    accounts = make_accounts(
        sandbox,
        [{"name": f"mm-{i:03d}", "deposit": DEPOSIT, "api_keys": KEYS} for i in range(ACCOUNTS)],
    )
    m = write_manifest(tmp_path_factory.mktemp("shards"), accounts)
    before = _requests(sandbox)
    shards = [
        _start(sandbox, "apply", "-f", str(m.path), "--auto-approve", "--shard", f"{i}/2")
        for i in range(2)
    ]
    runs = [_finish(p) for p in shards]
    return Converged(
        m, runs, before, _requests(sandbox), nonces(sandbox, [a.address for a in accounts])
    )


def test_two_shards_at_once_converge_without_conflict(converged: Converged) -> None:
    for i, run in enumerate(converged.runs):
        assert run.rc == 0, f"shard {i}/2:\n{run.err[-2000:]}"
        assert "left alone" not in run.err and "FAILED" not in run.err
        assert "Traceback" not in run.err
        mine = {a.name for a in converged.manifest.accounts if shard_of(a.name, 2) == i}
        touched = {
            line.split(":")[0].strip() for line in run.err.splitlines() if ": done: " in line
        }
        assert touched == mine, f"shard {i}/2 worked accounts outside its shard"


def test_no_double_work(sandbox: SandboxInfo, converged: Converged) -> None:
    before, after = converged.requests_before, converged.requests_after
    assert _delta(after, before, "POST /v3/onboarding") == ACCOUNTS  # each onboarded once
    assert _delta(after, before, "POST /v3/api-keys") == ACCOUNTS  # one "bot" key each
    assert _delta(after, before, "DELETE /v3/api-keys") == 0
    assert set(converged.nonces.values()) == {TXS_PER_ACCOUNT}  # no transaction twice
    target = to_base_units(Decimal(DEPOSIT))
    for a in converged.manifest.accounts:
        stark = read_secret(sandbox, converged.manifest.stark_path(a.name))
        assert stark is not None
        data = stark[0]
        assert deposited(sandbox, int(data["public_key"], 16), int(data["position_id"])) == target


def test_a_converged_plan_exits_0_and_status_reports_every_account(
    sandbox: SandboxInfo, converged: Converged
) -> None:
    m = converged.manifest
    plan = _provision(sandbox, "plan", "-f", str(m.path), "--detailed-exitcode")
    assert plan.rc == 0, plan.text[-2000:]
    text = _provision(sandbox, "status", "-f", str(m.path))
    assert text.rc == 0
    assert all(a.name in text.out for a in m.accounts)
    status = _provision(sandbox, "status", "-f", str(m.path), "--format", "json")
    assert status.rc == 0
    rows = {row["account"]: row for row in json.loads(status.out)["accounts"]}
    assert set(rows) == {a.name for a in m.accounts}
    for row in rows.values():
        assert row["onboarded"] is True and row["registered"] is True
        assert row["deposited"] == row["target"] == DEPOSIT
        assert row["stark_key_in_vault"] is True
        assert row["api_keys"] == {"default": True, "bot": True}
    shards = [
        {
            row["account"]
            for row in json.loads(
                _provision(
                    sandbox, "status", "-f", str(m.path), "--format", "json", "--shard", f"{i}/3"
                ).out
            )["accounts"]
        }
        for i in range(3)
    ]
    assert set().union(*shards) == set(rows) and sum(map(len, shards)) == len(rows)
    assert shards[0] == {a.name for a in m.accounts if shard_of(a.name, 3) == 0}


def test_nightly_drift_names_a_key_deleted_at_dydx_and_a_secret_removed_from_vault(
    sandbox: SandboxInfo, converged: Converged
) -> None:
    from dydx3 import Client

    m = converged.manifest
    victim, other = m.accounts[3], m.accounts[7]
    bot = read_secret(sandbox, m.api_path(victim.name, "bot"))
    assert bot is not None
    # behind the tool's back: the official client deletes the key at dYdX...
    client = Client(
        host=sandbox.api_url,
        network_id=11155111,
        eth_private_key=victim.private_key,
        web3_provider=sandbox.rpc_url,
    )
    client.eth_private.delete_api_key(api_key=bot[0]["key"], ethereum_address=victim.address)
    # ...and someone removes a secret from Vault
    vault(sandbox).secrets.kv.v2.delete_metadata_and_all_versions(
        path=m.api_path(other.name, "default"), mount_point=MOUNT
    )
    drift = _provision(sandbox, "plan", "-f", str(m.path), "--detailed-exitcode")
    assert drift.rc == 2, drift.text[-2000:]
    changed = [line for line in drift.out.splitlines() if "up to date" not in line]
    text = "\n".join(changed)
    assert victim.name in text and "bot" in text
    assert other.name in text and m.api_path(other.name, "default") in text
    untouched = [a.name for a in m.accounts if a.name not in (victim.name, other.name)]
    assert not any(f"{name} (" in text for name in untouched)  # only the two drifted accounts
    status = json.loads(_provision(sandbox, "status", "-f", str(m.path), "--format", "json").out)
    rows = {row["account"]: row for row in status["accounts"]}
    assert rows[victim.name]["api_keys"]["bot"] is False
    assert rows[other.name]["api_keys"]["default"] is False


@pytest.fixture
def fresh_manifest(sandbox: SandboxInfo, tmp_path: Path) -> Iterator[Manifest]:
    accounts = make_accounts(
        sandbox,
        [{"name": f"ov-{i:02d}", "deposit": "1", "api_keys": ["default"]} for i in range(10)],
    )
    yield write_manifest(tmp_path, accounts)


def test_overlapping_runs_never_work_the_same_account(
    sandbox: SandboxInfo, fresh_manifest: Manifest
) -> None:
    """A shard and a full apply at once (a rerun, another shard count): each account is
    worked by exactly one of them; the other leaves it alone and says so."""
    m = fresh_manifest
    before = _requests(sandbox)
    runs = [
        _start(sandbox, "apply", "-f", str(m.path), "--auto-approve", "--shard", "0/2"),
        _start(sandbox, "apply", "-f", str(m.path), "--auto-approve"),
    ]
    results = [_finish(p) for p in runs]
    after = _requests(sandbox)
    for run in results:
        assert run.rc in (0, 1), run.err[-2000:]
        assert "FAILED" not in run.err and "Traceback" not in run.err
        if run.rc == 1:
            # Which refusal the loser prints depends on timing: the lock was already held,
            # or both runs took it at the same moment and the compare-and-set lost.
            assert (
                "left alone, another apply works on it" in run.err
                or "left alone, another apply took it at the same moment" in run.err
            ), run.err[-2000:]
    worked = [
        {line.split(":")[0].strip() for line in run.err.splitlines() if ": done: " in line}
        for run in results
    ]
    assert not worked[0] & worked[1], "an account was worked by both runs"
    assert worked[0] | worked[1] == {a.name for a in m.accounts}
    assert _delta(after, before, "POST /v3/onboarding") == len(m.accounts)
    assert set(nonces(sandbox, [a.address for a in m.accounts]).values()) == {TXS_PER_ACCOUNT}
    assert _provision(sandbox, "plan", "-f", str(m.path), "--detailed-exitcode").rc == 0
