"""What the Vault token must be able to write before apply writes anything (apply/capabilities.py)."""

from __future__ import annotations

from support.apply_fakes import STATE, top_up_plan, world

from provisioner.apply.capabilities import WRITE, required
from provisioner.apply.lock import account_lock_path, lock_path, sender_lock_path
from provisioner.facts import WorldFacts


def test_an_account_with_work_needs_its_name_and_address_locks_and_its_journal() -> None:
    w = world(deposit="4.5")
    manifest = w.conn.manifest
    run_lock = lock_path(STATE, manifest.path)
    plan = top_up_plan(w, 4_500_000, 4_500_000)
    need = required(w.vault, manifest, plan, WorldFacts(manifest.network.chain_id, ()), run_lock)
    address_lock = sender_lock_path(STATE, manifest.network.chain_id, w.spec.address)
    for path in (run_lock, account_lock_path(STATE, w.spec.name), address_lock):
        assert need[w.vault.data_path(path)] >= {"read", *WRITE}, path
    sender = f"{STATE}/journal/_senders/{manifest.network.chain_id}/{w.spec.address.lower()}"
    assert need[w.vault.data_path(f"{sender}/entry")] >= {"read", *WRITE}
    assert "delete" in need[w.vault.metadata_path(f"{sender}/entry")]
