"""Issue #8: one account per signer kind, onboarded end to end on the sandbox by `provision apply`.

Private key by `env` and by `file`, an encrypted V3 keystore (password by reference), and a
remote JSON-RPC signer (anvil's unlocked dev account 5) for which no private key is read at
all. (A private key by `vault` reference is what examples/sandbox.yaml and the reconciler
tests use.) A signer that signs for another address blocks the account before any write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from eth_account import Account
from support.apply_runs import (
    TestAccount as FundedAccount,
)
from support.apply_runs import (
    assert_no_secret,
    cli,
    emulator_stats,
    make_accounts,
    nonces,
    read_secret,
    secret_values,
    versions,
)
from support.custody import assert_usable_from_vault, vault_values, write_signer_manifest

from provisioner.clients.vault import VaultClient
from provisioner.networks import SEPOLIA
from provisioner.sandbox.control import SandboxInfo
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS
from provisioner.secrets import SecretResolver
from provisioner.signers import keystore
from provisioner.signers.local import LocalKeySigner

pytestmark = pytest.mark.sandbox

REMOTE = DEV_ACCOUNTS[5]  # anvil holds its key unlocked; no other suite sends from it here
KEYSTORE_PASSWORD = "correct horse battery staple"


def test_private_key_by_env_and_by_file_and_a_keystore_onboard_end_to_end(
    sandbox_env: SandboxInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    by_env, by_file, keystore = make_accounts(
        sandbox,
        [
            {"name": "key-in-env", "deposit": "2", "api_keys": ["default", "hedger"]},
            {"name": "key-in-file", "deposit": "1.5"},
            {"name": "keystore", "deposit": "0.25", "api_keys": ["default", "quoter"]},
        ],
    )
    monkeypatch.setenv("KEY_IN_ENV_PRIVATE_KEY", by_env.private_key)
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / "key-in-file.key").write_text(by_file.private_key + "\n")
    # A standard V3 keystore (scrypt, light parameters to keep the test fast).
    encrypted = Account.encrypt(
        keystore.private_key, KEYSTORE_PASSWORD, kdf="scrypt", iterations=2**12
    )
    (keys_dir / "keystore.json").write_text(json.dumps(encrypted))
    monkeypatch.setenv("KEYSTORE_PASSWORD", KEYSTORE_PASSWORD)
    m = write_signer_manifest(
        tmp_path,
        [by_env, by_file, keystore],
        {
            "key-in-env": {"private_key": {"env": "KEY_IN_ENV_PRIVATE_KEY"}},
            "key-in-file": {"private_key": {"file": "keys/key-in-file.key"}},
            "keystore": {
                "keystore": {"path": "keys/keystore.json", "password": {"env": "KEYSTORE_PASSWORD"}}
            },
        },
    )
    assert "0x" + by_env.private_key[2:] not in m.path.read_text()

    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 0, res.text
    assert "0 account(s) failed" in res.out
    again = cli(capsys, "plan", "-f", str(m.path), "--detailed-exitcode")
    assert again.rc == 0, again.text

    for account, base_units in ((by_env, 2_000_000), (by_file, 1_500_000), (keystore, 250_000)):
        assert_usable_from_vault(sandbox, m, account, base_units)
    secrets = [*secret_values(sandbox, m), KEYSTORE_PASSWORD]
    assert_no_secret(res.text + again.text, secrets, "apply and plan output")


def test_remote_signer_onboards_and_no_private_key_is_ever_read(
    sandbox_env: SandboxInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    dev_key = REMOTE.private_key[2:].lower()
    assert not any(dev_key in v.lower() for v in os.environ.values()), (
        "the key is in the environment"
    )
    already = _deposited_by(sandbox, REMOTE.private_key)  # nonzero only on a reused sandbox
    account = FundedAccount(
        name="remote",
        address=REMOTE.address,
        private_key="",
        deposit=_usdc(already + 3_000_000),
        api_keys=["default", "hedger"],
    )
    m = write_signer_manifest(
        tmp_path,
        [account],
        {"remote": {"remote": {"url": "${ETH_RPC_URL}", "timeout_seconds": 30}}},
    )
    assert dev_key not in m.path.read_text().lower()

    resolved: list[str] = []
    vault_reads: list[str] = []
    real_resolve, real_read = SecretResolver.resolve, VaultClient.read

    def spy_resolve(self: SecretResolver, ref, **kw):  # type: ignore[no-untyped-def]
        resolved.append(ref.describe())
        return real_resolve(self, ref, **kw)

    def spy_read(self: VaultClient, path: str):  # type: ignore[no-untyped-def]
        vault_reads.append(path)
        return real_read(self, path)

    def no_local_key(*_args: object, **_kw: object) -> None:
        raise AssertionError("a private key was loaded into the provisioner")

    monkeypatch.setattr(SecretResolver, "resolve", spy_resolve)
    monkeypatch.setattr(VaultClient, "read", spy_read)
    monkeypatch.setattr(LocalKeySigner, "__init__", no_local_key)
    monkeypatch.setattr(keystore, "decrypt_keystore", no_local_key)

    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 0, res.text
    assert "0 account(s) failed" in res.out
    again = cli(capsys, "plan", "-f", str(m.path), "--detailed-exitcode")
    assert again.rc == 0, again.text

    assert "env:VAULT_TOKEN" in resolved and vault_reads, "the spies saw nothing"
    assert set(resolved) == {"env:VAULT_TOKEN"}, f"secrets resolved: {sorted(set(resolved))}"
    assert not [p for p in vault_reads if p.startswith("sandbox/")], "a sandbox signer key was read"
    assert all(dev_key not in v.lower() for v in vault_values(sandbox, m.prefix)), (
        "the remote signer's key landed in Vault"
    )
    monkeypatch.undo()  # the checks below build dydx3 clients from the stored STARK key
    assert_usable_from_vault(sandbox, m, account, already + 3_000_000)


def test_a_signer_for_another_address_blocks_the_account_before_any_write(
    sandbox_env: SandboxInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    wrong_key, wrong_remote, other = make_accounts(
        sandbox,
        [
            {"name": "wrong-key", "deposit": "1"},
            {"name": "wrong-remote", "deposit": "1"},
            {"name": "other", "deposit": "1"},
        ],
    )
    monkeypatch.setenv("SOMEONE_ELSES_KEY", other.private_key)
    m = write_signer_manifest(
        tmp_path,
        [wrong_key, wrong_remote],
        {
            "wrong-key": {"private_key": {"env": "SOMEONE_ELSES_KEY"}},
            # anvil serves its dev accounts only, not this fresh address
            "wrong-remote": {"remote": {"url": "${ETH_RPC_URL}"}},
        },
    )
    plan = cli(capsys, "plan", "-f", str(m.path), "--format", "json")
    assert plan.rc == 0, plan.text
    by_name = {a["name"]: a for a in json.loads(plan.out)["accounts"]}
    expected = {
        "wrong-key": f"signs for {other.address}, manifest says {wrong_key.address}",
        "wrong-remote": f"does not sign for {wrong_remote.address}",
    }
    for name, fragment in expected.items():
        steps = by_name[name]["steps"]
        assert steps and all(s["blocked"] for s in steps), name
        for step in steps:
            assert step["blocked"].startswith("the signer cannot be used for "), step
            assert fragment in step["blocked"], step

    writes = emulator_stats(sandbox)["writes"]
    before = nonces(sandbox, [wrong_key.address, wrong_remote.address, other.address])
    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 1, res.text  # checked before anything runs: refused, not skipped
    assert "signer check failed" in res.text and "nothing was done" in res.text
    assert expected["wrong-key"] in res.text and expected["wrong-remote"] in res.text
    assert emulator_stats(sandbox)["writes"] == writes, "dYdX saw a write"
    assert nonces(sandbox, [wrong_key.address, wrong_remote.address, other.address]) == before
    assert all(v is None for v in versions(sandbox, m.destinations()).values()), "Vault was written"
    assert read_secret(sandbox, m.stark_path("wrong-key")) is None
    assert_no_secret(plan.text + res.text, [other.private_key], "plan and apply output")


def _deposited_by(sandbox: SandboxInfo, eth_private_key: str) -> int:
    """USDC (base units) already deposited to this wallet's STARK key, at any position."""
    from dydx3 import Client
    from support.apply_runs import chain_client

    client = Client(
        host=sandbox.api_url, network_id=SEPOLIA.chain_id, eth_private_key=eth_private_key
    )
    stark_public = int(client.onboarding.derive_stark_key()["public_key"], 16)
    with chain_client(sandbox) as chain:
        return sum(v for (s, _), v in chain.deposits(refresh=True).items() if s == stark_public)


def _usdc(base_units: int) -> str:
    return f"{base_units // 10**6}.{base_units % 10**6:06d}"
