"""Looking again under the locks: never-written API key destinations are listed per folder, not read one by one."""

from decimal import Decimal
from types import SimpleNamespace

from provisioner.clients.vault import SecretRecord, VaultError
from provisioner.facts import AccountFacts, VaultEntry
from provisioner.manifest.model import AccountSpec, ApiKeySpec
from provisioner.observe import _read_api_secrets

KEYS = ("default", "bot-01", "bot-02", "bot-03")


class FakeVault:
    def __init__(self, stored: dict[str, dict[str, str]], *, can_list: bool = True) -> None:
        self.stored = stored
        self.can_list = can_list
        self.reads: list[str] = []
        self.lists: list[str] = []

    def read(self, path: str) -> SecretRecord:
        self.reads.append(path)
        data = self.stored.get(path)
        return SecretRecord(VaultEntry(path, data is not None, 1 if data else 0), data or {})

    def list_state(self, prefix: str) -> list[str]:
        self.lists.append(prefix)
        if not self.can_list:
            raise VaultError("permission denied")
        return sorted(
            {p[len(prefix) + 1 :].split("/")[0] for p in self.stored if p.startswith(prefix + "/")}
        )


def spec() -> AccountSpec:
    return AccountSpec(
        name="mm",
        address="0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1",
        signer=None,
        deposit=Decimal(0),
        stark_key_path="t/mm/stark",
        api_keys=tuple(ApiKeySpec(k, f"t/mm/api/{k}") for k in KEYS),
    )


def fresh_facts() -> AccountFacts:
    return AccountFacts(
        name="mm",
        address=spec().address,
        stark_secret=VaultEntry("t/mm/stark", False),
        api_secrets=tuple((k, VaultEntry(f"t/mm/api/{k}", False)) for k in KEYS),
    )


def test_a_first_look_reads_every_destination() -> None:
    vault = FakeVault({})
    records = _read_api_secrets(SimpleNamespace(vault=vault), spec(), None)  # type: ignore[arg-type]
    assert vault.lists == [] and len(vault.reads) == len(KEYS)
    assert not any(r.entry.exists for r in records.values())


def test_looking_again_lists_the_folder_of_never_written_keys_once() -> None:
    vault = FakeVault({})
    records = _read_api_secrets(SimpleNamespace(vault=vault), spec(), fresh_facts())  # type: ignore[arg-type]
    assert vault.lists == ["t/mm/api"] and vault.reads == []
    assert records == {k: SecretRecord(VaultEntry(f"t/mm/api/{k}", False), {}) for k in KEYS}


def test_a_key_written_in_between_is_listed_and_read() -> None:
    vault = FakeVault({"t/mm/api/bot-02": {"key": "k"}})
    records = _read_api_secrets(SimpleNamespace(vault=vault), spec(), fresh_facts())  # type: ignore[arg-type]
    assert vault.reads == ["t/mm/api/bot-02"]
    assert records["bot-02"].entry.exists and not records["bot-01"].entry.exists


def test_without_the_list_capability_every_destination_is_read() -> None:
    vault = FakeVault({}, can_list=False)
    _read_api_secrets(SimpleNamespace(vault=vault), spec(), fresh_facts())  # type: ignore[arg-type]
    assert len(vault.reads) == len(KEYS)
