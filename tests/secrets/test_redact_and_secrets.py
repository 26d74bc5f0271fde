"""Secret references resolve to values the Redactor already knows; errors name the reference, never the value."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
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


class MeetingVault(FakeVault):
    """Each read waits until ``parties`` reads are in flight at once (or fails after 5 s)."""

    def __init__(self, secrets: Mapping[str, Mapping[str, str]], parties: int) -> None:
        super().__init__(secrets)
        self.meet = threading.Barrier(parties, timeout=5)

    def read(self, path: str) -> SecretRecord:
        self.meet.wait()
        return super().read(path)


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


def test_different_vault_paths_are_read_side_by_side(redactor: Redactor) -> None:
    """Every account's signer key is read at once while a run looks, not one after another
    behind one lock (50 accounts made 50 sequential reads of ~10 ms: half a second)."""
    keys = {f"signers/{i}": {"private_key": f"{HEX_CANARY[:-1]}{i}"} for i in range(4)}
    vault = MeetingVault(keys, parties=4)
    resolver = SecretResolver(redactor, env={})
    resolver.attach_vault(vault)  # type: ignore[arg-type]
    refs = [SecretRef("vault", path, "private_key") for path in keys]
    with ThreadPoolExecutor(max_workers=4) as pool:
        values = list(pool.map(resolver.resolve, refs))
    assert values == [data["private_key"] for data in keys.values()]
    assert sorted(vault.reads) == sorted(keys)


def test_one_vault_path_asked_by_many_threads_is_read_once(redactor: Redactor) -> None:
    vault = FakeVault({"signers/0": {"private_key": HEX_CANARY, "address": "0xf39F"}})
    resolver = SecretResolver(redactor, env={})
    resolver.attach_vault(vault)  # type: ignore[arg-type]
    fields = ["private_key", "address"] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        values = list(
            pool.map(lambda f: resolver.resolve(SecretRef("vault", "signers/0", f)), fields)
        )
    assert values == [HEX_CANARY, "0xf39F"] * 8
    assert vault.reads == ["signers/0"]


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


# -- forms a secret takes on its way out (issue 16) --------------------------------------------


def test_hex_in_mixed_case_is_masked(redactor: Redactor) -> None:
    redactor.register(HEX_CANARY)
    mixed = "".join(c.upper() if i % 3 else c for i, c in enumerate(HEX_CANARY[2:]))
    out = redactor.redact(f"key {mixed} and 0X{mixed}")
    assert HEX_CANARY[2:].lstrip("0").lower() not in out.lower()
    assert out.count(MASK) == 2


def test_a_checksummed_address_registered_in_lower_case_is_masked(redactor: Redactor) -> None:
    redactor.register("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266")
    assert "F4ce6aB88" not in redactor.redact("to 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")


def test_a_hex_secret_printed_as_a_decimal_integer_is_masked(redactor: Redactor) -> None:
    redactor.register(HEX_CANARY)
    assert str(int(HEX_CANARY, 16)) not in redactor.redact(f"k={int(HEX_CANARY, 16)}")


@pytest.mark.parametrize("offset", [0, 1, 2, 5])
@pytest.mark.parametrize("urlsafe", [False, True])
def test_base64_forms_are_masked_at_any_alignment(
    redactor: Redactor, offset: int, urlsafe: bool
) -> None:
    import base64

    secret = "canary-api-secret-Zm9v_bar/baz+qux"
    redactor.register(secret)
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    # as in a Basic auth header: the secret inside a longer value, then encoded
    encoded = encode(("u" * offset + ":" + secret + ":tail").encode()).decode()
    out = redactor.redact(f"Authorization: Basic {encoded}")
    assert out.count(MASK) == 1, out
    # what is left readable: the neighbours' own bytes, and at most a group on either side
    # where the secret's bytes share base64 characters with them
    unmasked = len(out.split("Basic ")[1]) - len(MASK)
    neighbours = len(encode(("u" * offset + ":").encode())) + len(encode(b":tail"))
    assert unmasked <= neighbours + 8, out


def test_base64_of_a_hex_secrets_bytes_is_masked(redactor: Redactor) -> None:
    import base64

    redactor.register(HEX_CANARY)
    raw = (
        bytes.fromhex(HEX_CANARY[2:] + "0")[:31]
        if len(HEX_CANARY) % 2
        else bytes.fromhex(HEX_CANARY[2:])
    )
    encoded = base64.b64encode(raw).decode()
    assert encoded not in redactor.redact(f"blob {encoded}")


@pytest.mark.parametrize(
    "secret", ['pass"word\\with/slashes-and-more', "pässwörd-ünïcode-secret", "tab\tand\nnewline-x"]
)
def test_json_escaped_forms_are_masked(redactor: Redactor, secret: str) -> None:
    import json

    redactor.register(secret)
    for dumped in (json.dumps({"v": secret}), json.dumps({"v": secret}, ensure_ascii=False)):
        out = redactor.redact(dumped)
        assert json.loads(out.replace(MASK, "")) == {"v": ""}, out
    escaped_slash = json.dumps(secret)[1:-1].replace("/", "\\/")
    assert redactor.redact(escaped_slash) == MASK


def test_values_shorter_than_the_minimum_are_not_masked(redactor: Redactor) -> None:
    from provisioner.redact import MIN_LENGTH

    short = "ab1" + "x" * (MIN_LENGTH - 4)
    redactor.register(short)
    assert redactor.redact(f"word {short} stays") == f"word {short} stays"


def test_url_credentials_and_path_secrets_are_registered(redactor: Redactor) -> None:
    url = "https://user:canary-pw-123@eth.example:8545/v2/canary-key-abcdef?apikey=canary-q-987654"
    redactor.register_url(url)
    line = 'DEBUG urllib3.connectionpool: https://eth.example:8545 "POST /v2/canary-key-abcdef?apikey=canary-q-987654 HTTP/1.1" 200'
    out = redactor.redact(line + " pw canary-pw-123")
    assert "canary" not in out and "eth.example:8545" in out
