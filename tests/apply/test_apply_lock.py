"""One apply at a time per manifest: the Vault check-and-set lock."""

from __future__ import annotations

import uuid

import pytest

from provisioner.apply.lock import ApplyLock, LockHeld, lock_path
from provisioner.clients.vault import VaultClient
from provisioner.manifest.model import SecretRef, VaultAuth, VaultSpec
from provisioner.redact import Redactor
from provisioner.sandbox.control import SandboxInfo
from provisioner.secrets import SecretResolver

pytestmark = pytest.mark.sandbox


@pytest.fixture
def vault(sandbox: SandboxInfo) -> VaultClient:
    redactor = Redactor()
    resolver = SecretResolver(redactor, {"T": sandbox.vault_token})
    spec = VaultSpec(
        address=sandbox.vault_addr, auth=VaultAuth(method="token", token=SecretRef("env", "T"))
    )
    return VaultClient.connect(spec, resolver, redactor)


def test_second_apply_is_refused_with_the_holder_and_force_unlock_takes_over(
    vault: VaultClient,
) -> None:
    path = lock_path(f"lock-test-{uuid.uuid4().hex[:8]}", "provision.yaml")
    first = ApplyLock(vault, path)
    held = first.acquire()
    with pytest.raises(LockHeld) as refused:
        ApplyLock(vault, path).acquire()
    message = str(refused.value)
    assert held.id in message and "pid" in message and f"--force-unlock {held.id}" in message
    with pytest.raises(LockHeld):
        ApplyLock(vault, path).acquire(force_unlock="not-the-id")
    second = ApplyLock(vault, path)
    taken = second.acquire(force_unlock=held.id)
    assert taken.id != held.id
    first.release()  # the old holder must not release the new holder's lock
    assert second.current()[0] == taken
    second.release()
    assert second.current()[0] is None
    ApplyLock(vault, path).acquire()  # free again


def test_a_lock_past_its_ttl_is_reported_as_stale(vault: VaultClient) -> None:
    path = lock_path(f"lock-test-{uuid.uuid4().hex[:8]}", "provision.yaml")
    ApplyLock(vault, path, ttl_seconds=0).acquire()
    with pytest.raises(LockHeld, match="stale"):
        ApplyLock(vault, path).acquire()
