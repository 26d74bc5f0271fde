"""Secret references resolve to values the Redactor already knows; errors name the reference, never the value."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pytest

from provisioner.clients.vault import SecretRecord, VaultError
from provisioner.facts import VaultEntry
from provisioner.manifest.model import SecretRef
from provisioner.redact import MASK, Redactor
from provisioner.secrets import SecretError, SecretResolver

CANARY = "canary-Zm9vYmFyYmF6-secret"
HEX_CANARY = "0x000abc123def4567890abcdef1234567890abcdef1234567890abcdef12345"


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


class FakeVault:
    """Stands in for VaultClient.read: a dict of path -> data, counting reads."""

    def __init__(self, secrets: Mapping[str, Mapping[str, str]]) -> None:
        self.secrets = secrets
        self.reads: list[str] = []

    def read(self, path: str) -> SecretRecord:
        self.reads.append(path)
        data = self.secrets.get(path)
        entry = VaultEntry(
            path=path,
            exists=data is not None,
            version=1 if data is not None else 0,
            fields=frozenset(data or {}),
        )
        return SecretRecord(entry=entry, data=MappingProxyType(dict(data or {})))


class FailingVault:
    def read(self, path: str) -> SecretRecord:
        raise VaultError(
            f"Vault at http://127.0.0.1:1: reading secret/{path} failed: permission denied"
        )


# -- the redactor -------------------------------------------------------------------------


def test_registered_value_is_masked(redactor: Redactor) -> None:
    redactor.register(CANARY)
    assert redactor.redact(f"token={CANARY}; again {CANARY}.") == f"token={MASK}; again {MASK}."


@pytest.mark.parametrize(
    "variant",
    [
        HEX_CANARY,
        HEX_CANARY[2:],  # no 0x
        HEX_CANARY.upper().replace("0X", "0x"),
        HEX_CANARY[2:].upper(),
        HEX_CANARY[2:].lstrip("0"),  # leading zeros lost, as browsers print it
        "0x" + HEX_CANARY[2:].lstrip("0"),
    ],
)
def test_hex_variants_are_masked(redactor: Redactor, variant: str) -> None:
    redactor.register(HEX_CANARY)
    out = redactor.redact(f"key: {variant} end")
    assert HEX_CANARY[2:].lstrip("0").lower() not in out.lower()
    assert MASK in out


def test_hex_registered_without_prefix_masks_prefixed_form(redactor: Redactor) -> None:
    redactor.register(HEX_CANARY[2:].upper())
    assert HEX_CANARY[2:].lower() not in redactor.redact(HEX_CANARY).lower()


def test_short_values_are_not_masked(redactor: Redactor) -> None:
    redactor.register("abc")  # would otherwise mask ordinary words
    assert redactor.redact("abcdef") == "abcdef"


def test_nothing_registered_leaves_text_alone(redactor: Redactor) -> None:
    assert redactor.redact("plain text") == "plain text"


# -- env ----------------------------------------------------------------------------------


def test_env_ref_resolves_and_registers(redactor: Redactor) -> None:
    resolver = SecretResolver(redactor, env={"MM_KEY": CANARY})
    assert resolver.resolve(SecretRef("env", "MM_KEY")) == CANARY
    assert CANARY in redactor
    assert redactor.redact(f"got {CANARY}") == f"got {MASK}"


def test_env_ref_is_cached_for_the_run(redactor: Redactor) -> None:
    env = {"MM_KEY": CANARY}
    resolver = SecretResolver(redactor, env=env)
    resolver.resolve(SecretRef("env", "MM_KEY"))
    env["MM_KEY"] = "changed-later-value"
    assert resolver.resolve(SecretRef("env", "MM_KEY")) == CANARY


def test_missing_env_names_the_variable(redactor: Redactor) -> None:
    resolver = SecretResolver(redactor, env={"OTHER": CANARY})
    with pytest.raises(SecretError) as err:
        resolver.resolve(SecretRef("env", "MM_KEY"))
    assert "env:MM_KEY" in str(err.value) and "MM_KEY is not set" in str(err.value)
    assert CANARY not in str(err.value)


def test_empty_env_is_an_error(redactor: Redactor) -> None:
    with pytest.raises(SecretError, match="MM_KEY is empty"):
        SecretResolver(redactor, env={"MM_KEY": "  "}).resolve(SecretRef("env", "MM_KEY"))


def test_default_env_is_the_process_environment(
    redactor: Redactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYDX_PROVISIONER_TEST_SECRET", CANARY)
    assert (
        SecretResolver(redactor).resolve(SecretRef("env", "DYDX_PROVISIONER_TEST_SECRET")) == CANARY
    )


# -- file ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["", "\n", "\r\n", "\n\n"])
def test_file_ref_strips_trailing_newline(redactor: Redactor, tmp_path: Path, ending: str) -> None:
    path = tmp_path / "key.txt"
    path.write_bytes((HEX_CANARY + ending).encode())
    resolver = SecretResolver(redactor, env={})
    assert resolver.resolve(SecretRef("file", str(path))) == HEX_CANARY
    assert redactor.redact(HEX_CANARY[2:].upper()) == MASK


def test_file_is_read_once(redactor: Redactor, tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    path.write_text(CANARY)
    resolver = SecretResolver(redactor, env={})
    resolver.resolve(SecretRef("file", str(path)))
    path.unlink()
    assert resolver.resolve(SecretRef("file", str(path))) == CANARY


def test_missing_file_names_the_file(redactor: Redactor, tmp_path: Path) -> None:
    path = tmp_path / "absent.txt"
    with pytest.raises(SecretError) as err:
        SecretResolver(redactor, env={}).resolve(SecretRef("file", str(path)))
    assert str(path) in str(err.value) and "No such file" in str(err.value)


def test_unreadable_file_names_the_file_not_the_content(redactor: Redactor, tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(SecretError, match="a-directory"):
        SecretResolver(redactor, env={}).resolve(SecretRef("file", str(directory)))

    binary = tmp_path / "binary.key"
    binary.write_bytes(CANARY.encode() + b"\xff\xfe")
    with pytest.raises(SecretError) as err:
        SecretResolver(redactor, env={}).resolve(SecretRef("file", str(binary)))
    assert "binary.key" in str(err.value) and CANARY not in str(err.value)


def test_empty_file_is_an_error(redactor: Redactor, tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_text("\n")
    with pytest.raises(SecretError, match="is empty"):
        SecretResolver(redactor, env={}).resolve(SecretRef("file", str(path)))


# -- vault (through a stand-in client) ----------------------------------------------------


def test_vault_ref_before_login_is_an_error(redactor: Redactor) -> None:
    with pytest.raises(SecretError) as err:
        SecretResolver(redactor, env={}).resolve(SecretRef("vault", "signers/0", "private_key"))
    assert "vault:signers/0#private_key" in str(err.value)


def test_vault_ref_reads_each_path_once(redactor: Redactor) -> None:
    vault = FakeVault({"signers/0": {"private_key": HEX_CANARY, "address": "0xf39F"}})
    resolver = SecretResolver(redactor, env={})
    resolver.attach_vault(vault)  # type: ignore[arg-type]
    assert resolver.resolve(SecretRef("vault", "signers/0", "private_key")) == HEX_CANARY
    assert resolver.resolve(SecretRef("vault", "signers/0", "address")) == "0xf39F"
    assert resolver.resolve(SecretRef("vault", "signers/0", "private_key")) == HEX_CANARY
    assert vault.reads == ["signers/0"]
    assert HEX_CANARY in redactor


def test_vault_ref_errors_name_the_ref_not_the_values(redactor: Redactor) -> None:
    vault = FakeVault({"signers/0": {"private_key": HEX_CANARY}})
    resolver = SecretResolver(redactor, env={})
    resolver.attach_vault(vault)  # type: ignore[arg-type]

    with pytest.raises(SecretError) as err:
        resolver.resolve(SecretRef("vault", "signers/0", "mnemonic"))
    assert "vault:signers/0#mnemonic" in str(err.value) and "private_key" in str(err.value)
    assert HEX_CANARY[2:].lstrip("0") not in str(err.value)

    with pytest.raises(SecretError, match="no secret at signers/9"):
        resolver.resolve(SecretRef("vault", "signers/9", "private_key"))
    with pytest.raises(SecretError, match="needs a field"):
        resolver.resolve(SecretRef("vault", "signers/0"))


def test_vault_failure_becomes_a_secret_error(redactor: Redactor) -> None:
    resolver = SecretResolver(redactor, env={})
    resolver.attach_vault(FailingVault())  # type: ignore[arg-type]
    with pytest.raises(SecretError) as err:
        resolver.resolve(SecretRef("vault", "signers/0", "private_key"))
    assert str(err.value).startswith("vault:signers/0#private_key: Vault at")
    assert "permission denied" in str(err.value)
