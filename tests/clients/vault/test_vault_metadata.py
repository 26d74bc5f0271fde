"""Metadata-only reads (issue 16): a token that may read no secret's data still sees what apply
recorded, and never a record that describes someone else's version."""

from __future__ import annotations

import hvac
import pytest
from support.vault import MOUNT, ClientFactory

from provisioner.clients.vault import VaultClient, VaultError

pytestmark = pytest.mark.sandbox

CANARY_KEY = "0x" + "c0ffee" * 10 + "1234"
METADATA_ONLY = 'path "secret/metadata/*" { capabilities = ["read", "list"] }\n'


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


@pytest.fixture
def metadata_client(connect_client: ClientFactory, root: hvac.Client) -> VaultClient:
    root.sys.create_or_update_policy(name="test-metadata-only", policy=METADATA_ONLY)
    token = root.auth.token.create(policies=["test-metadata-only"], ttl="10m")["auth"][
        "client_token"
    ]
    return connect_client(token=token)


def test_a_metadata_read_sees_what_a_data_read_sees(
    client: VaultClient, metadata_client: VaultClient, prefix: str
) -> None:
    path = f"{prefix}/stark"
    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=0)
    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=1)
    with pytest.raises(VaultError, match="permission denied"):
        metadata_client.read(path)
    record = metadata_client.read_metadata(path)
    assert record.described
    assert record.entry == client.read(path).entry
    assert CANARY_KEY not in repr(record)


def test_never_written_deleted_and_foreign(
    client: VaultClient, metadata_client: VaultClient, root: hvac.Client, prefix: str
) -> None:
    assert not metadata_client.read_metadata(f"{prefix}/none").entry.exists
    path = f"{prefix}/gone"
    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=0)
    root.secrets.kv.v2.delete_latest_version_of_secret(path=path, mount_point=MOUNT)
    gone = metadata_client.read_metadata(path)
    assert not gone.entry.exists and gone.entry.version == 1 and not gone.described
    foreign = f"{prefix}/foreign"
    root.secrets.kv.v2.create_or_update_secret(path=foreign, secret={"x": "y"}, mount_point=MOUNT)
    seen = metadata_client.read_metadata(foreign).entry
    assert seen.exists and seen.is_foreign("mm-alpha") and seen.fields == frozenset()


def test_a_version_written_behind_our_back_is_not_described(
    client: VaultClient, metadata_client: VaultClient, root: hvac.Client, prefix: str
) -> None:
    path = f"{prefix}/changed"
    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=0)
    root.secrets.kv.v2.create_or_update_secret(
        path=path, secret={"private_key": "replaced"}, mount_point=MOUNT
    )
    record = metadata_client.read_metadata(path)
    assert record.entry.exists and record.entry.is_ours("mm-alpha") and not record.described
    assert record.entry.fields == frozenset()  # nothing known about version 2


def test_a_lost_check_and_set_leaves_no_record_of_the_winners_version(
    client: VaultClient, root: hvac.Client, prefix: str
) -> None:
    path = f"{prefix}/race"
    client.write_owned(path, stark_data(), account="mm-alpha", expected_version=0)
    record = client.read(path)
    root.secrets.kv.v2.create_or_update_secret(path=path, secret={"b": "c"}, mount_point=MOUNT)
    with pytest.raises(VaultError, match="changed since it was read"):
        client.write_owned(
            path, stark_data(), account="mm-alpha", expected_version=1, current=record
        )
    assert not client.read_metadata(path).described
