"""The importer against fakes of Vault and dYdX: every check happens before the first write.

Secret values are canaries: no refusal may contain them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from types import MappingProxyType

import pytest

from provisioner.clients.dydx import ApiCredentials, DydxError, OnboardedAccount, StarkKeyPair
from provisioner.clients.vault import CasConflict, SecretRecord
from provisioner.custody.importer import ImportRefused, import_web_app_keys
from provisioner.custody.local_storage import WebAppKeys
from provisioner.errors import ProvisionerError
from provisioner.facts import MANAGED_BY, VaultEntry
from provisioner.manifest.model import AccountSpec, ApiKeySpec

ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
STARK_PATH = "dydx/mm-delta/stark"
API_PATH = "dydx/mm-delta/api/default"
PAIR = StarkKeyPair.from_private_key(int("c0ffee" * 10, 16))
CREDS = ApiCredentials(
    key="0b3a9c6e-41f2-4d7a-9e10-5c2b7d8e9f01",
    secret="CANARYsecretCANARYsecretCANARYsecret0000",
    passphrase="CANARYpassphrase0000",
)
KEYS = WebAppKeys(address=ADDRESS, stark=PAIR, api=CREDS)
ACCOUNT = OnboardedAccount(
    account_id="3fa2c8e4-0000-5000-8000-000000000001", position_id=100001, stark_key=PAIR.public_key
)
SPEC = AccountSpec(
    name="mm-delta",
    address=ADDRESS,
    signer=None,
    deposit=Decimal("0"),
    stark_key_path=STARK_PATH,
    api_keys=(ApiKeySpec("default", API_PATH), ApiKeySpec("hedger", "dydx/mm-delta/api/hedger")),
)
CANARIES = ["c0ffeec0ffee", CREDS.secret, CREDS.passphrase, "canary"]


@dataclass
class FakeVault:
    """KV v2 in a dict: path -> (data, custom_metadata, version)."""

    secrets: dict[str, tuple[dict[str, str], dict[str, str], int]] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    fail_on: str | None = None

    def read(self, path: str) -> SecretRecord:
        data, meta, version = self.secrets.get(path, ({}, {}, 0))
        entry = VaultEntry(
            path=path,
            exists=bool(data),
            version=version,
            managed_by=meta.get("managed-by"),
            account=meta.get("account"),
            fields=frozenset(data),
        )
        return SecretRecord(entry=entry, data=MappingProxyType(dict(data)))

    def write_owned(
        self,
        path: str,
        data: Mapping[str, str],
        *,
        account: str,
        expected_version: int,
        current: SecretRecord | None = None,
    ) -> int:
        if path == self.fail_on:
            raise CasConflict(
                f"Vault at x: secret/{path} changed since it was read; nothing was written"
            )
        _, _, version = self.secrets.get(path, ({}, {}, 0))
        assert version == expected_version
        self.secrets[path] = (
            dict(data),
            {"managed-by": MANAGED_BY, "account": account},
            version + 1,
        )
        self.writes.append(path)
        return version + 1

    def put_ours(self, path: str, data: dict[str, str], account: str = "mm-delta") -> None:
        self.secrets[path] = (data, {"managed-by": MANAGED_BY, "account": account}, 1)


@dataclass
class FakeDydx:
    account: OnboardedAccount = ACCOUNT
    error: DydxError | None = None
    calls: int = 0

    def get_account(self, address: str, creds: ApiCredentials) -> OnboardedAccount:
        self.calls += 1
        assert address == ADDRESS and creds == CREDS
        if self.error is not None:
            raise self.error
        return self.account


def run(vault: FakeVault, dydx: FakeDydx | None = None, spec: AccountSpec = SPEC):  # type: ignore[no-untyped-def]
    return import_web_app_keys(
        spec, KEYS, vault=vault, dydx=dydx or FakeDydx(), network="sandbox", source="export.json"
    )


def refused(
    vault: FakeVault, *fragments: str, dydx: FakeDydx | None = None, spec: AccountSpec = SPEC
) -> str:
    before = dict(vault.secrets)
    with pytest.raises(ImportRefused) as err:
        run(vault, dydx, spec)
    message = str(err.value)
    assert message.startswith("export.json: import for mm-delta refused: ")
    assert message.endswith("; nothing was written") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    for canary in CANARIES:
        assert canary.lower() not in message.lower(), "a secret leaked into the refusal"
    assert vault.writes == [] and vault.secrets == before
    return message


def test_writes_the_stark_key_and_the_default_api_key_in_the_documented_layout() -> None:
    vault = FakeVault()
    result = run(vault)
    assert result.account == ACCOUNT
    assert [(s.path, s.written, s.version) for s in result.secrets] == [
        (STARK_PATH, True, 1),
        (API_PATH, True, 1),
    ]
    stark, meta, _ = vault.secrets[STARK_PATH]
    assert stark == {
        "private_key": hex(PAIR.private_key),
        "public_key": hex(PAIR.public_key),
        "public_key_y_coordinate": hex(PAIR.public_key_y),
        "ethereum_address": ADDRESS,
        "network": "sandbox",
        "position_id": "100001",
        "account_id": ACCOUNT.account_id,
    }
    assert meta == {"managed-by": MANAGED_BY, "account": "mm-delta"}
    api, _, _ = vault.secrets[API_PATH]
    assert api == {
        "key": CREDS.key,
        "secret": CREDS.secret,
        "passphrase": CREDS.passphrase,
        "ethereum_address": ADDRESS,
        "network": "sandbox",
    }


def test_importing_the_same_keys_again_writes_nothing() -> None:
    vault = FakeVault()
    run(vault)
    vault.writes.clear()
    result = run(vault)
    assert vault.writes == []
    assert [(s.written, s.version) for s in result.secrets] == [(False, 1), (False, 1)]


def test_an_incomplete_record_of_ours_for_the_same_key_is_completed() -> None:
    vault = FakeVault()
    vault.put_ours(
        STARK_PATH, {"private_key": f"{PAIR.private_key:064x}", "public_key": hex(PAIR.public_key)}
    )
    result = run(vault)
    assert vault.writes == [STARK_PATH, API_PATH]
    assert result.secrets[0].version == 2
    assert vault.secrets[STARK_PATH][0]["position_id"] == "100001"


def test_no_default_api_key_in_the_manifest() -> None:
    spec = replace(SPEC, api_keys=(ApiKeySpec("hedger", "dydx/mm-delta/api/hedger"),))
    refused(FakeVault(), "names no 'default' API key", "- name: default", spec=spec)


@pytest.mark.parametrize("path", [STARK_PATH, API_PATH])
def test_foreign_data_at_a_destination(path: str) -> None:
    vault = FakeVault()
    vault.secrets[path] = ({"note": "an operator's", "private_key": "canary-foreign"}, {}, 3)
    dydx = FakeDydx()
    refused(vault, f"{path} already holds data not written by dydx-provisioner", dydx=dydx)


def test_data_of_ours_for_another_account_is_foreign_too() -> None:
    vault = FakeVault()
    vault.put_ours(API_PATH, {"key": CREDS.key}, account="mm-other")
    refused(vault, "managed by 'dydx-provisioner' for 'mm-other'")


def test_a_different_stark_key_of_ours_is_not_replaced() -> None:
    other = StarkKeyPair.from_private_key(12345)
    vault = FakeVault()
    vault.put_ours(
        STARK_PATH, {"private_key": hex(other.private_key), "public_key": hex(other.public_key)}
    )
    refused(vault, "already holds a different STARK key", hex(other.public_key))


def test_a_stark_key_stored_for_another_address_is_not_replaced() -> None:
    vault = FakeVault()
    vault.put_ours(
        STARK_PATH,
        {
            "private_key": hex(PAIR.private_key),
            "ethereum_address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        },
    )
    refused(vault, "holds a STARK key for 0x3C44")


def test_a_different_api_key_of_ours_is_not_replaced() -> None:
    vault = FakeVault()
    vault.put_ours(
        API_PATH, {"key": "11111111-2222-3333-4444-555555555555", "secret": "x", "passphrase": "y"}
    )
    refused(vault, "already holds API key 11111111-2222-3333-4444-555555555555")


def test_the_same_api_key_with_another_secret_is_not_replaced() -> None:
    vault = FakeVault()
    vault.put_ours(
        API_PATH, {"key": CREDS.key, "secret": "otherSecret0", "passphrase": CREDS.passphrase}
    )
    refused(vault, "with another secret or passphrase")


def test_a_dead_api_key() -> None:
    dydx = FakeDydx(
        error=DydxError(
            "dYdX GET /v3/accounts/:id: 401 Unauthorized", status=401, msg="Unauthorized"
        )
    )
    refused(
        FakeVault(),
        f"dYdX refused API key {CREDS.key} (Unauthorized)",
        "export the keys again",
        dydx=dydx,
    )


def test_an_api_key_of_another_wallet() -> None:
    dydx = FakeDydx(error=DydxError("dYdX GET /v3/accounts/:id: 404 AccountNotFound", status=404))
    refused(FakeVault(), "belongs to another wallet", dydx=dydx)


def test_a_stark_key_dydx_does_not_know_for_this_account() -> None:
    dydx = FakeDydx(account=replace(ACCOUNT, stark_key=0xABC))
    refused(FakeVault(), "has STARK key 0xabc", f"the export's is {PAIR.public_key_hex}", dydx=dydx)


def test_dydx_unreachable_is_an_error_and_nothing_is_written() -> None:
    vault = FakeVault()
    dydx = FakeDydx(
        error=DydxError("dYdX GET /v3/accounts/:id: connection refused at http://x", status=None)
    )
    with pytest.raises(DydxError, match="connection refused"):
        run(vault, dydx)
    assert vault.writes == []


def test_vault_is_checked_before_dydx_is_asked() -> None:
    vault = FakeVault()
    vault.secrets[STARK_PATH] = ({"x": "y"}, {}, 1)
    dydx = FakeDydx()
    refused(vault, "not written by dydx-provisioner", dydx=dydx)
    assert dydx.calls == 0


def test_a_writer_racing_the_second_write_is_reported_with_what_landed() -> None:
    vault = FakeVault(fail_on=API_PATH)
    with pytest.raises(ProvisionerError) as err:
        run(vault)
    assert f"but {STARK_PATH} was stored before it: run the import again" in str(err.value)
