"""Fencing (issue #14): every client method that changes the world asks the fence first;
the reads never do. Against the sandbox's real clients, with a fence that refuses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.apply_runs import TestAccount, emulator_stats, fresh_account, write_manifest

from provisioner.apply.fence import WRITES, FencedChain, FencedDydx, FencedSigner, FencedVault
from provisioner.apply.lease import LeaseLost
from provisioner.connections import Connections, connect
from provisioner.manifest.loader import load_manifest
from provisioner.sandbox.control import SandboxInfo
from provisioner.signers.local import LocalKeySigner

pytestmark = pytest.mark.sandbox


def _refuse() -> None:
    raise LeaseLost("this run no longer holds its lease (test)")


@pytest.fixture
def conn(sandbox_env: SandboxInfo, tmp_path: Path) -> Iterator[tuple[Connections, str]]:
    address, key = fresh_account(sandbox_env)
    m = write_manifest(tmp_path, [TestAccount("fenced", address, key)])
    yield connect(load_manifest(str(m.path))), key


WRITE_CALLS: dict[str, dict[str, tuple[Any, ...]]] = {
    "vault": {
        "write_owned": ("fence-test/secret", {"k": "v"}),
        "set_owned_metadata": ("fence-test/secret", {"replaces": "k"}),
        "write_state": ("fence-test/state", {"k": "v"}, 0),
        "delete_state": ("fence-test/state",),
    },
    "dydx": {"onboard": (None, None), "create_api_key": (None,), "delete_api_key": (None, "id")},
    "chain": {"send_raw": (b"\x01",)},
    "signer": {"send_transaction": ({"nonce": 0},)},
}
KWARGS = {
    "write_owned": {"account": "fenced", "expected_version": 0},
    "set_owned_metadata": {"account": "fenced"},
    "delete_api_key": {"default_key": "other"},
}


def test_each_declared_write_is_called_out() -> None:
    assert {k: set(v) for k, v in WRITE_CALLS.items()} == {k: set(v) for k, v in WRITES.items()}


def test_every_write_is_refused_without_the_lease_and_nothing_reaches_the_world(
    sandbox_env: SandboxInfo, conn: tuple[Connections, str]
) -> None:
    clients, key = conn
    signer = LocalKeySigner(key)
    wrapped = {
        "vault": FencedVault(clients.vault, _refuse),
        "dydx": FencedDydx(clients.dydx, _refuse),
        "chain": FencedChain(clients.chain, _refuse),
        "signer": FencedSigner(signer, _refuse),
    }
    before = emulator_stats(sandbox_env)["writes"], clients.vault.stats["writes"]
    for client, calls in WRITE_CALLS.items():
        for method, args in calls.items():
            with pytest.raises(LeaseLost):
                getattr(wrapped[client], method)(*args, **KWARGS.get(method, {}))
    assert (emulator_stats(sandbox_env)["writes"], clients.vault.stats["writes"]) == before
    # reads pass straight through
    assert wrapped["vault"].read("fence-test/secret").entry.exists is False  # type: ignore[attr-defined]
    assert wrapped["chain"].transaction_counts(signer.address) == (0, 0)  # type: ignore[attr-defined]
    assert wrapped["dydx"].user_exists(signer.address) is False  # type: ignore[attr-defined]
    assert wrapped["signer"].address == signer.address  # type: ignore[attr-defined]
