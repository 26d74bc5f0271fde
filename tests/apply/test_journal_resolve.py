"""`provision journal resolve` takes the account's lock as apply does: while a run holds the
account it removes nothing (that run may be settling the very entry), and once the run is
gone it resolves the entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.apply_runs import make_accounts, write_manifest
from support.money import journal_entries
from support.safety import provision

from provisioner.apply.lease import Lease
from provisioner.apply.lock import AccountLocks, lock_path, sender_lock_path
from provisioner.clients.vault import VaultClient
from provisioner.journal import Journal, StoredTx
from provisioner.manifest.model import SecretRef, VaultAuth, VaultSpec
from provisioner.networks import SEPOLIA
from provisioner.redact import Redactor
from provisioner.sandbox.control import SandboxInfo
from provisioner.secrets import SecretResolver

pytestmark = pytest.mark.sandbox


def _vault(sandbox: SandboxInfo) -> VaultClient:
    redactor = Redactor()
    resolver = SecretResolver(redactor, {"T": sandbox.vault_token})
    spec = VaultSpec(
        address=sandbox.vault_addr, auth=VaultAuth(method="token", token=SecretRef("env", "T"))
    )
    return VaultClient.connect(spec, resolver, redactor)


@pytest.mark.parametrize("holds", ["the account", "its address under another name"])
def test_resolve_waits_for_the_run_that_holds_the_account(
    sandbox_env: SandboxInfo, tmp_path: Path, holds: str
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "held", "deposit": "1"}])
    m = write_manifest(tmp_path, [acct])
    vault = _vault(sandbox)
    # what a remote signer that never answered leaves: a request with its nonce, no hash
    awaiting = StoredTx(
        "held", "deposit", 7, "", "", 1_000_000, acct.address, chain_id=SEPOLIA.chain_id
    )
    Journal(vault, m.state_path).record(awaiting)
    run = Lease(vault, lock_path(m.state_path, str(m.path)), 60)
    run.acquire()
    # a live apply (this process) holds the account, or (another manifest's) its address
    name = "held" if holds == "the account" else "desk-held"
    sender = sender_lock_path(m.state_path, SEPOLIA.chain_id, acct.address)
    locks = AccountLocks(vault, m.state_path, run, {name: sender})
    assert locks.acquire([name]) == {}
    args = ("journal", "resolve", "-f", str(m.path), "--account", "held", "--nonce", "7")
    try:
        refused = provision(sandbox, *args)
        assert refused.rc == 1, str(refused)
        why = "another apply works on " + ("it" if name == "held" else "its address")
        assert why in refused.err, refused.err
        assert "nothing was resolved" in refused.err and "Traceback" not in refused.err
        assert len(journal_entries(sandbox, m.state_path)) == 1
    finally:
        locks.release()
        run.release()
    resolved = provision(sandbox, *args)
    assert resolved.rc == 0 and "resolved by hand" in resolved.out, str(resolved)
    assert journal_entries(sandbox, m.state_path) == {}
    again = provision(sandbox, *args)  # its lease and lock were given back, the entry is gone
    assert again.rc == 1 and "no journaled transaction with nonce 7" in again.err, str(again)
