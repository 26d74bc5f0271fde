"""Guardrails (issue #7) refuse before the first write of any kind: not a destination, not a
transaction, not a request that changes dYdX, and not even the apply lock in Vault."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from support.apply_runs import (
    MOUNT,
    Manifest,
    cli,
    emulator_stats,
    make_accounts,
    nonces,
    tree_versions,
    vault,
    versions,
    write_manifest,
)

from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox


def _snapshot(sandbox: SandboxInfo, m: Manifest) -> tuple[int, dict[str, int], dict[str, int]]:
    return (
        emulator_stats(sandbox)["writes"],
        nonces(sandbox, [a.address for a in m.accounts]),
        tree_versions(sandbox, m.prefix),
    )


def _assert_untouched(sandbox: SandboxInfo, m: Manifest, before: tuple) -> None:  # type: ignore[type-arg]
    writes, tx_counts, tree = before
    assert emulator_stats(sandbox)["writes"] == writes, "dYdX saw a write"
    assert nonces(sandbox, [a.address for a in m.accounts]) == tx_counts, "a transaction went out"
    assert tree_versions(sandbox, m.prefix) == tree, "Vault was written (destinations or state)"
    assert all(v is None for v in versions(sandbox, m.destinations()).values())


def test_a_token_that_cannot_write_a_destination_is_refused_naming_it(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    first, second = make_accounts(
        sandbox,
        [
            {"name": "cap-a", "deposit": "1", "api_keys": ["default", "hedger"]},
            {"name": "cap-b", "deposit": "1"},
        ],
    )
    m = write_manifest(tmp_path, [first, second])
    read_only = m.api_path("cap-a", "hedger")
    policy = f"restricted-{uuid.uuid4().hex[:8]}"
    root = vault(sandbox)
    root.sys.create_or_update_policy(
        name=policy,
        policy=f"""
path "{MOUNT}/data/{m.prefix}/*" {{ capabilities = ["create", "read", "update"] }}
path "{MOUNT}/metadata/{m.prefix}/*" {{ capabilities = ["create", "read", "update", "delete", "list"] }}
path "{MOUNT}/data/{read_only}" {{ capabilities = ["read"] }}
path "{MOUNT}/metadata/{read_only}" {{ capabilities = ["read"] }}
path "{MOUNT}/data/sandbox/test-signers/*" {{ capabilities = ["read"] }}
""",
    )
    token = root.auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
    monkeypatch.setenv("VAULT_TOKEN", token)
    assert cli(capsys, "plan", "-f", str(m.path)).rc == 0  # reading is all a plan needs
    before = _snapshot(sandbox, m)
    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 1, res.text
    assert "lacks capabilities" in res.err and "nothing was done" in res.err
    assert f"{MOUNT}/data/{read_only} (create, update)" in res.err
    assert f"{MOUNT}/metadata/{read_only} (create, update)" in res.err
    assert "cap-b" not in res.err  # everything else is granted
    assert token not in res.text
    _assert_untouched(sandbox, m, before)


def test_deposit_ceiling_refuses_before_even_the_lock(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "ceiling", "deposit": "10.000001"}])
    m = write_manifest(tmp_path, [acct])
    before = _snapshot(sandbox, m)
    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve", "--max-deposit", "10")
    assert res.rc == 1, res.text
    assert "--max-deposit" in res.err and "10.000001" in res.err
    _assert_untouched(sandbox, m, before)


def test_wrong_chain_id_refuses_before_even_the_lock(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "chain", "deposit": "1"}])
    network = {
        "name": "elsewhere",
        "chain_id": 1,
        "api_url": "${DYDX_API_URL}",
        "rpc_url": "${ETH_RPC_URL}",
    }
    m = write_manifest(tmp_path, [acct], network=network)
    before = _snapshot(sandbox, m)
    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve", "--confirm-mainnet")
    assert res.rc == 1, res.text
    assert "serves chain 11155111, the manifest says 1" in res.err
    _assert_untouched(sandbox, m, before)


def test_foreign_data_at_a_destination_is_never_written(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "foreign", "deposit": "1"}])
    m = write_manifest(tmp_path, [acct])
    kv = vault(sandbox).secrets.kv.v2
    kv.create_or_update_secret(path=m.stark_path("foreign"), secret={"x": "y"}, mount_point=MOUNT)
    writes, tx_counts, _ = _snapshot(sandbox, m)
    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 0, res.text  # blocked is not failed
    assert "conflict" in res.out
    assert versions(sandbox, [m.stark_path("foreign")]) == {m.stark_path("foreign"): 1}
    assert emulator_stats(sandbox)["writes"] == writes
    assert nonces(sandbox, [acct.address]) == tx_counts
