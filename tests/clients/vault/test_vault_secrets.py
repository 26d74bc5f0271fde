"""VaultClient reads and owned writes against a real OpenBao (KV v2)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import hvac
import pytest
from support.vault import MOUNT

from provisioner.clients.vault import CasConflict, ForeignSecret, VaultClient
from provisioner.content_metadata import content_digest, without_content_keys
from provisioner.facts import MANAGED_BY
from provisioner.manifest.model import SecretRef
from provisioner.redact import Redactor
from provisioner.secrets import SecretError, SecretResolver

pytestmark = pytest.mark.sandbox


CANARY_KEY = "0x00c4a1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e"
CANARY_SECRET = "canary-secret-Zm9vYmFyYmF6cXV4"
CANARY_PASSPHRASE = "canary-passphrase-7Hq2"


def stark_data() -> dict[str, str]:
    return {
        "private_key": CANARY_KEY,
        "public_key": "0x0123456789abcdef",
        "public_key_y_coordinate": "0x0fedcba987654321",
        "ethereum_address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "position_id": "7",
        "account_id": "acc-1",
        "network": "sandbox",
    }


def test_read_missing_path(client: VaultClient, prefix: str) -> None:
    record = client.read(f"{prefix}/nothing")
    assert not record.entry.exists
    assert record.entry.version == 0
    assert record.entry.fields == frozenset()
    assert dict(record.data) == {}


def test_create_then_read_back(
    client: VaultClient, root: hvac.Client, redactor: Redactor, prefix: str
) -> None:
    path = f"{prefix}/stark"
    assert client.write_owned(path, stark_data(), account="mm-alpha", expected_version=0) == 1

    record = client.read(path)
    entry = record.entry
    assert entry.exists and entry.version == 1
    assert entry.is_ours("mm-alpha") and not entry.is_foreign("mm-alpha")
    assert entry.is_foreign("mm-beta")
    assert entry.fields == frozenset(stark_data())
    assert "private_key" not in dict(entry.public)
    assert entry.get("public_key") == "0x0123456789abcdef"
    assert entry.get("position_id") == "7"
    assert dict(record.data) == stark_data()
    assert CANARY_KEY not in repr(record)
    assert CANARY_KEY in redactor

    meta = root.secrets.kv.v2.read_secret_metadata(path=path, mount_point=MOUNT)["data"]
    custom = meta["custom_metadata"]
    assert (custom["managed-by"], custom["account"]) == (MANAGED_BY, "mm-alpha")
    assert custom["content-version"] == str(meta["current_version"])
    assert custom["content-sha256"] == content_digest(record.data)
    assert all(CANARY_KEY not in value for value in custom.values())  # a record, no secret


def test_update_with_expected_version(client: VaultClient, prefix: str) -> None:
    path = f"{prefix}/api/default"
    data = {"key": "k-1", "secret": CANARY_SECRET, "passphrase": CANARY_PASSPHRASE}
    assert client.write_owned(path, data, account="mm-alpha", expected_version=0) == 1
    assert (
        client.write_owned(path, {**data, "key": "k-2"}, account="mm-alpha", expected_version=1)
        == 2
    )
    assert client.read(path).entry.get("key") == "k-2"


def test_cas_conflict_writes_nothing(client: VaultClient, prefix: str) -> None:
    path = f"{prefix}/stark"
    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=0)
    with pytest.raises(CasConflict) as err:
        client.write_owned(path, stark_data(), account="mm-alpha", expected_version=0)
    assert "expected version 0" in str(err.value)
    with pytest.raises(CasConflict):
        client.write_owned(path, stark_data(), account="mm-alpha", expected_version=5)
    assert CANARY_KEY not in str(err.value)
    assert client.read(path).entry.version == 1


def test_foreign_secret_is_refused_and_left_alone(
    client: VaultClient, root: hvac.Client, prefix: str
) -> None:
    path = f"{prefix}/theirs"
    root.secrets.kv.v2.create_or_update_secret(
        path=path, secret={"private_key": "theirs-123456"}, mount_point=MOUNT
    )

    entry = client.read(path).entry
    assert entry.exists and entry.is_foreign("mm-alpha") and entry.managed_by is None
    assert entry.fields == {"private_key"} and entry.public == ()  # names only: not our layout

    with pytest.raises(ForeignSecret) as err:
        client.write_owned(path, stark_data(), account="mm-alpha", expected_version=1)
    assert path in str(err.value) and "refusing" in str(err.value)
    assert CANARY_KEY not in str(err.value) and "theirs-123456" not in str(err.value)

    after = root.secrets.kv.v2.read_secret_version(
        path=path, mount_point=MOUNT, raise_on_deleted_version=True
    )
    assert after["data"]["data"] == {"private_key": "theirs-123456"}
    assert after["data"]["metadata"]["custom_metadata"] is None  # not even relabelled


def test_write_with_the_callers_read(client: VaultClient, root: hvac.Client, prefix: str) -> None:
    path = f"{prefix}/stark"
    record = client.read(path)
    start = client.stats
    assert (
        client.write_owned(
            path, stark_data(), account="mm-alpha", expected_version=0, current=record
        )
        == 1
    )
    assert client.stats["reads"] == start["reads"]  # no second read
    assert client.stats["writes"] == start["writes"] + 2

    stale = record  # still says "nothing there"
    with pytest.raises(CasConflict):
        client.write_owned(
            path, stark_data(), account="mm-alpha", expected_version=0, current=stale
        )
    root.secrets.kv.v2.create_or_update_secret(
        path=f"{path}-2", secret={"a": "b"}, mount_point=MOUNT
    )
    with pytest.raises(ForeignSecret):
        client.write_owned(
            f"{path}-2",
            {"a": "c"},
            account="mm-alpha",
            expected_version=1,
            current=client.read(f"{path}-2"),
        )


def test_another_accounts_secret_is_foreign(client: VaultClient, prefix: str) -> None:
    path = f"{prefix}/stark"
    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=0)
    with pytest.raises(ForeignSecret):
        client.write_owned(path, stark_data(), account="mm-beta", expected_version=1)


def test_custom_metadata_of_others_is_kept(
    client: VaultClient, root: hvac.Client, prefix: str
) -> None:
    path = f"{prefix}/labelled"
    kv = root.secrets.kv.v2
    kv.create_or_update_secret(path=path, secret={"old": "value"}, mount_point=MOUNT)
    kv.update_metadata(path=path, custom_metadata={"team": "desk-3"}, mount_point=MOUNT)
    kv.delete_latest_version_of_secret(path=path, mount_point=MOUNT)

    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=1)
    meta = kv.read_secret_metadata(path=path, mount_point=MOUNT)["data"]
    assert without_content_keys(meta["custom_metadata"]) == {
        "team": "desk-3",
        "managed-by": MANAGED_BY,
        "account": "mm-alpha",
    }
    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=2)
    meta = kv.read_secret_metadata(path=path, mount_point=MOUNT)["data"]
    assert meta["custom_metadata"]["team"] == "desk-3"  # rewriting our own keeps them too


def test_a_write_after_a_read_keeps_others_metadata_without_reading_it_again(
    client: VaultClient, root: hvac.Client, prefix: str
) -> None:
    """The read a step makes before writing (steps._write_once) returns custom_metadata with
    the data: the write keeps the keys others put there from it, with no metadata GET."""
    path = f"{prefix}/labelled-read"
    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=0)
    root.secrets.kv.v2.update_metadata(
        path=path, custom_metadata={**_custom(root, path), "team": "desk-3"}, mount_point=MOUNT
    )
    current = client.read(path)
    assert current.custom_metadata is not None and current.custom_metadata["team"] == "desk-3"
    start = client.stats
    client.write_owned(
        path,
        {**stark_data(), "position_id": "8"},
        account="mm-alpha",
        expected_version=current.entry.version,
        current=current,
    )
    assert client.stats["reads"] == start["reads"]  # no metadata GET
    assert client.stats["writes"] == start["writes"] + 2  # the metadata, then the data
    assert _custom(root, path)["team"] == "desk-3"
    assert CANARY_KEY not in repr(current)


def _custom(root: hvac.Client, path: str) -> dict[str, str]:
    meta = root.secrets.kv.v2.read_secret_metadata(path=path, mount_point=MOUNT)["data"]
    return dict(meta["custom_metadata"] or {})


@pytest.mark.parametrize("how", ["delete", "destroy"])
def test_deleted_current_version_does_not_exist(
    client: VaultClient, root: hvac.Client, prefix: str, how: str
) -> None:
    path = f"{prefix}/gone"
    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=0)
    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=1)
    if how == "delete":
        root.secrets.kv.v2.delete_latest_version_of_secret(path=path, mount_point=MOUNT)
    else:
        root.secrets.kv.v2.destroy_secret_versions(path=path, versions=[2], mount_point=MOUNT)

    entry = client.read(path).entry
    assert not entry.exists
    assert entry.version == 2
    assert entry.fields == frozenset()
    assert not entry.is_foreign("mm-alpha")
    # writing again takes the next version, with the version the read reported
    assert client.write_owned(path, stark_data(), account="mm-alpha", expected_version=2) == 3


def test_stats_count_reads_and_writes(client: VaultClient, prefix: str) -> None:
    path = f"{prefix}/stark"
    start = client.stats
    client.read(path)
    assert client.stats["reads"] == start["reads"] + 1
    assert client.stats["writes"] == start["writes"]

    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=0)
    after_create = client.stats
    assert after_create["writes"] == start["writes"] + 2  # metadata, then data
    assert after_create["reads"] == start["reads"] + 2  # the ownership check

    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=1)
    # the content record is rewritten with the data: metadata, then data
    assert client.stats["writes"] == after_create["writes"] + 2

    converged = client.stats
    for _ in range(3):
        client.read(path)
    assert client.stats["writes"] == converged["writes"]
    assert client.stats["reads"] == converged["reads"] + 3


def test_concurrent_reads_and_writes(client: VaultClient, prefix: str) -> None:
    paths = [f"{prefix}/acc-{i}" for i in range(12)]

    def work(path: str) -> int:
        version = client.write_owned(path, stark_data(), account="mm-alpha", expected_version=0)
        assert client.read(path).entry.version == version
        return version

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(work, paths)) == [1] * len(paths)


def test_resolver_reads_vault_refs_once(
    client: VaultClient, redactor: Redactor, prefix: str
) -> None:
    path = f"{prefix}/signer"
    client.write_owned(
        path, {"private_key": CANARY_KEY, "address": "0xabc"}, account="x", expected_version=0
    )
    resolver = SecretResolver(redactor, env={})
    with pytest.raises(SecretError, match="before Vault login"):
        resolver.resolve(SecretRef("vault", path, "private_key"))
    resolver.attach_vault(client)

    before = client.stats["reads"]
    assert resolver.resolve(SecretRef("vault", path, "private_key")) == CANARY_KEY
    assert resolver.resolve(SecretRef("vault", path, "address")) == "0xabc"
    assert resolver.resolve(SecretRef("vault", path, "private_key")) == CANARY_KEY
    assert client.stats["reads"] == before + 1

    with pytest.raises(SecretError) as err:
        resolver.resolve(SecretRef("vault", path, "mnemonic"))
    assert "mnemonic" in str(err.value) and "address, private_key" in str(err.value)
    assert CANARY_KEY not in str(err.value)
    with pytest.raises(SecretError, match="no secret at"):
        resolver.resolve(SecretRef("vault", f"{prefix}/absent", "private_key"))
