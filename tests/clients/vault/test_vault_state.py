"""The tool's own bookkeeping (locks, journal) under ``state_path``, against a real OpenBao."""

from __future__ import annotations

import hvac
import pytest
from support.vault import MOUNT

from provisioner.clients.vault import CasConflict, VaultClient, VaultError

pytestmark = pytest.mark.sandbox


def test_state_round_trip(client: VaultClient, prefix: str) -> None:
    lock = f"{prefix}/locks/apply"
    assert client.read_state(lock) is None

    assert client.write_state(lock, {"owner": "ci-1", "ttl": 900}, cas=0) == 1
    assert client.read_state(lock) == ({"owner": "ci-1", "ttl": 900}, 1)

    with pytest.raises(CasConflict) as err:
        client.write_state(lock, {"owner": "ci-2"}, cas=0)
    assert f"{MOUNT}/{lock}" in str(err.value)
    assert client.write_state(lock, {"owner": "ci-1", "ttl": 1800}, cas=1) == 2

    client.delete_state(lock)
    assert client.read_state(lock) is None
    assert client.write_state(lock, {"owner": "ci-3"}, cas=0) == 1  # all versions went with it


def test_list_state(client: VaultClient, prefix: str) -> None:
    assert client.list_state(f"{prefix}/journal") == []
    for name in ("mm-alpha/1", "mm-alpha/2", "mm-beta/1"):
        client.write_state(f"{prefix}/journal/{name}", {"tx": name}, cas=0)
    assert client.list_state(f"{prefix}/journal") == ["mm-alpha/", "mm-beta/"]
    assert client.list_state(f"{prefix}/journal/mm-alpha/") == ["1", "2"]


def test_soft_deleted_state_keeps_its_version(
    client: VaultClient, root: hvac.Client, prefix: str
) -> None:
    path = f"{prefix}/locks/x"
    client.write_state(path, {"owner": "a"}, cas=0)
    root.secrets.kv.v2.delete_latest_version_of_secret(path=path, mount_point=MOUNT)
    assert client.read_state(path) == ({}, 1)
    assert client.write_state(path, {"owner": "b"}, cas=1) == 2


def test_state_writes_are_counted(client: VaultClient, prefix: str) -> None:
    start = client.stats
    client.write_state(f"{prefix}/s", {"a": 1}, cas=0)
    client.read_state(f"{prefix}/s")
    client.list_state(prefix)
    client.delete_state(f"{prefix}/s")
    end = client.stats
    assert end["writes"] - start["writes"] == 2
    assert end["reads"] - start["reads"] == 2
    assert end["auth"] == start["auth"]


def test_paths_are_checked(client: VaultClient) -> None:
    for bad in ("", "/", "a/../b", "a//b"):
        with pytest.raises(VaultError, match="invalid Vault path"):
            client.read_state(bad)
