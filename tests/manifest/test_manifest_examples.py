"""The shipped examples validate, mean what their comments say, and agree with the raw schema editors use."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from support.manifest import ENV, EXAMPLES

import provisioner
from provisioner.manifest.loader import load_manifest
from provisioner.manifest.model import KeystoreSigner, PrivateKeySigner, RemoteSigner, SecretRef
from provisioner.manifest.schema import schema_text
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_the_examples_exist() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    assert {"sandbox.yaml", "mainnet.yaml", "signers.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_validates(path: Path) -> None:
    manifest = load_manifest(path, ENV)
    assert manifest.accounts


SCHEMA_LINE = "# yaml-language-server: $schema="


@pytest.mark.parametrize(
    "path", [*EXAMPLE_FILES, *sorted(EXAMPLES.glob("ci/*.yaml"))], ids=lambda p: p.name
)
def test_example_points_editors_at_the_packaged_schema(path: Path) -> None:
    # One schema file: the one inside the package, which `provision schema` prints.
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(SCHEMA_LINE)
    target = (path.parent / first.removeprefix(SCHEMA_LINE)).resolve()
    assert target == (Path(provisioner.__file__).parent / "schemas/manifest.schema.json").resolve()
    assert target.read_text(encoding="utf-8") == schema_text()


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_matches_the_raw_schema(path: Path) -> None:
    # What an editor sees: the file as YAML, before interpolation and our own checks.
    schema = json.loads(schema_text())
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = list(Draft202012Validator(schema).iter_errors(data))
    assert errors == []


def test_sandbox_example_uses_the_sandbox_dev_signers() -> None:
    manifest = load_manifest(EXAMPLES / "sandbox.yaml", ENV)
    assert manifest.network.name == "sandbox"
    assert manifest.vault.address == ENV["VAULT_ADDR"]
    assert manifest.vault.auth.method == "token"
    assert len(manifest.accounts) == 3
    deposits = {a.name: a.deposit for a in manifest.accounts}
    assert Decimal("8.2") in deposits.values()
    assert len(set(deposits.values())) == 3
    for account in manifest.accounts:
        assert isinstance(account.signer, PrivateKeySigner)
        ref = account.signer.key
        assert ref.kind == "vault" and ref.field == "private_key"
        n = int(ref.target.removeprefix("sandbox/signers/"))
        # the key at that path signs for this address
        assert account.address == DEV_ACCOUNTS[n].address
        names = [k.name for k in account.api_keys]
        assert names[0] == "default"
    assert any(len(a.api_keys) > 1 for a in manifest.accounts)


def test_signers_example_shows_every_signer_kind() -> None:
    manifest = load_manifest(EXAMPLES / "signers.yaml", ENV)
    signers = [a.signer for a in manifest.accounts]
    refs = [s.key.kind for s in signers if isinstance(s, PrivateKeySigner)]
    assert sorted(refs) == ["env", "file", "vault"]
    assert any(isinstance(s, KeystoreSigner) for s in signers)
    assert any(isinstance(s, RemoteSigner) for s in signers)
    assert None in signers


def test_mainnet_example_holds_addresses_and_references_only() -> None:
    manifest = load_manifest(EXAMPLES / "mainnet.yaml", ENV)
    assert manifest.network.chain_id == 1
    assert manifest.max_deposit is not None
    assert manifest.vault.auth.secret_id == SecretRef("env", "VAULT_SECRET_ID")
    for account in manifest.accounts:
        assert not account.stark_key_path.startswith(manifest.vault.state_path + "/")
