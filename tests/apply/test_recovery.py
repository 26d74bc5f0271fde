"""Recovery paths a kill cannot reach (issue #7): Vault failing right after dYdX made a key,
metadata written without its data, and journaled transactions that cannot be sent again."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.apply_runs import (
    MOUNT,
    chain_client,
    cli,
    make_accounts,
    read_secret,
    vault,
    write_manifest,
)
from support.safety import convergence_problems, journal_keys, listed_keys

from provisioner.apply import steps
from provisioner.clients.dydx import DydxClient, DydxError
from provisioner.clients.retry import RetryPolicy
from provisioner.clients.vault import VaultClient, VaultError
from provisioner.sandbox.control import SandboxInfo
from provisioner.signers.local import LocalKeySigner

pytestmark = pytest.mark.sandbox


@pytest.fixture
def no_write_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "WRITE_RETRY", RetryPolicy(max_attempts=3, base_delay=0))


def _converges(sandbox: SandboxInfo, m, capsys) -> None:  # type: ignore[no-untyped-def]
    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 0, res.text
    assert cli(capsys, "plan", "-f", str(m.path), "--detailed-exitcode").rc == 0
    with chain_client(sandbox) as chain:
        deposits = chain.deposits(refresh=True)
    assert convergence_problems(sandbox, m, deposits) == []


def test_a_new_key_whose_secret_cannot_be_stored_is_deleted_at_dydx(
    sandbox_env: SandboxInfo,
    tmp_path: Path,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
    no_write_backoff: None,
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "lost", "api_keys": ["default", "hedger"]}])
    m = write_manifest(tmp_path, [acct])
    hedger = m.api_path("lost", "hedger")
    real = VaultClient.write_owned
    attempts = []

    def vault_down_for_hedger(self, path, data, **kwargs):  # type: ignore[no-untyped-def]
        if path == hedger:
            attempts.append(path)
            raise VaultError(
                "Vault at http://127.0.0.1:1 is unreachable (writing: ConnectionError)"
            )
        return real(self, path, data, **kwargs)

    monkeypatch.setattr(VaultClient, "write_owned", vault_down_for_hedger)
    res = cli(capsys, "-v", "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 1, res.text
    assert len(attempts) == 3, "the write is retried"
    assert "FAILED at lost/api_key/hedger" in res.err
    assert "was deleted at dYdX, so no key is left without its secret" in res.err
    default = read_secret(sandbox, m.api_path("lost", "default"))
    assert default is not None
    assert listed_keys(sandbox, acct.address, default[0]) == {default[0]["key"]}
    assert journal_keys(sandbox, m) == []
    assert read_secret(sandbox, hedger) is None

    monkeypatch.setattr(VaultClient, "write_owned", real)
    _converges(sandbox, m, capsys)


def test_when_deleting_the_unstored_key_fails_too_the_next_run_does_it(
    sandbox_env: SandboxInfo,
    tmp_path: Path,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
    no_write_backoff: None,
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "lost2", "api_keys": ["default", "hedger"]}])
    m = write_manifest(tmp_path, [acct])
    hedger = m.api_path("lost2", "hedger")
    real_write, real_delete = VaultClient.write_owned, DydxClient.delete_api_key

    def vault_down_for_hedger(self, path, data, **kwargs):  # type: ignore[no-untyped-def]
        if path == hedger:
            raise VaultError(
                "Vault at http://127.0.0.1:1 is unreachable (writing: ConnectionError)"
            )
        return real_write(self, path, data, **kwargs)

    def dydx_down(self, signer, key, *, default_key):  # type: ignore[no-untyped-def]
        raise DydxError("dYdX DELETE /v3/api-keys: 503 unavailable", status=503)

    monkeypatch.setattr(VaultClient, "write_owned", vault_down_for_hedger)
    monkeypatch.setattr(DydxClient, "delete_api_key", dydx_down)
    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 1, res.text
    assert "failed too" in res.err and "the next apply deletes it" in res.err
    assert len(journal_keys(sandbox, m)) == 1  # the intent, with the new key's id
    default = read_secret(sandbox, m.api_path("lost2", "default"))
    assert default is not None
    assert len(listed_keys(sandbox, acct.address, default[0])) == 2  # the orphan is live

    monkeypatch.setattr(VaultClient, "write_owned", real_write)
    monkeypatch.setattr(DydxClient, "delete_api_key", real_delete)
    plan = cli(capsys, "plan", "-f", str(m.path))
    assert "never stored its secret in Vault: apply deletes it" in plan.out
    _converges(sandbox, m, capsys)


def test_ownership_metadata_without_data_is_an_empty_destination_of_ours(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """What a crash between write_owned's two requests leaves: never a conflict, never stuck."""
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "half", "api_keys": ["default"]}])
    m = write_manifest(tmp_path, [acct])
    kv = vault(sandbox).secrets.kv.v2
    for path in m.destinations():
        kv.update_metadata(
            path=path,
            custom_metadata={"managed-by": "dydx-provisioner", "account": "half"},
            mount_point=MOUNT,
        )
    plan = cli(capsys, "plan", "-f", str(m.path))
    assert "conflict" not in plan.out and "+ derive the STARK key" in plan.out
    _converges(sandbox, m, capsys)


def _journal(sandbox: SandboxInfo, m, account: str, key: str, data: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    vault(sandbox).secrets.kv.v2.create_or_update_secret(
        path=f"{m.state_path}/journal/{account}/{key}", secret=data, mount_point=MOUNT
    )


def test_journaled_transactions_that_can_never_land_or_cannot_be_sent(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "jtx", "deposit": "1"}])
    m = write_manifest(tmp_path, [acct])
    _converges(sandbox, m, capsys)

    # signed bytes the node refuses for a reason other than their nonce: kept, account failed
    _journal(
        sandbox,
        m,
        "jtx",
        "deposit-99",
        {
            "intent": "deposit",
            "nonce": 99,
            "tx_hash": "0x" + "ab" * 32,
            "raw_tx": "0x1234",
            "amount": "5",
        },
    )
    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 1, res.text
    assert "FAILED at journal" in res.err
    assert len(journal_keys(sandbox, m)) == 1, "an entry whose fate is unknown was dropped"
    vault(sandbox).secrets.kv.v2.delete_metadata_and_all_versions(
        path=f"{m.state_path}/journal/jtx/deposit-99", mount_point=MOUNT
    )

    # a transaction signed for a nonce another transaction took: it can never land
    signer = LocalKeySigner(acct.private_key)
    with chain_client(sandbox) as chain:
        tx = {
            "from": acct.address,
            "to": acct.address,
            "value": 1,
            "gas": 21000,
            "gasPrice": 10**9,
            "nonce": 0,
            "chainId": 11155111,
        }
        raw = signer.sign_transaction(tx)
        tx_hash = chain.hash_of_raw(raw)
    _journal(
        sandbox,
        m,
        "jtx",
        "approve-0",
        {
            "intent": "approve",
            "nonce": 0,
            "tx_hash": tx_hash,
            "raw_tx": "0x" + raw.hex(),
            "amount": "5",
        },
    )
    res = cli(capsys, "-v", "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 0, res.text
    assert "can never be mined" in res.err
    assert journal_keys(sandbox, m) == []
    _converges(sandbox, m, capsys)
