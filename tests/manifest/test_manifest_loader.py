"""What the loader produces: defaults and templates merged, references kept as references, networks filled in."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from support.manifest import ALPHA, BETA, ENV, HEADER, errors, load, messages, one_account

from provisioner.errors import ProvisionerError
from provisioner.manifest.diagnostics import ManifestError
from provisioner.manifest.loader import load_manifest
from provisioner.manifest.model import (
    KeystoreSigner,
    Location,
    PrivateKeySigner,
    RemoteSigner,
    SecretRef,
)
from provisioner.networks import MAINNET, SEPOLIA

TWO_ACCOUNTS_WITH_DEFAULTS = (
    HEADER
    + f"""\
defaults:
  deposit: "1000"
  allowance: max
  signer:
    private_key: {{vault: "signers/{{name}}#private_key"}}
  secrets: {{stark_key: "dydx/{{name}}/stark"}}
  api_keys:
    - {{name: default, secret: "dydx/{{name}}/api/default"}}
    - {{name: quoter, secret: "dydx/{{name}}/api/quoter"}}
accounts:
  - name: mm-alpha
    address: "{ALPHA}"
  - name: mm-beta
    address: "{BETA}"
    deposit: 8.2
    allowance: exact
    signer: null
    secrets: {{stark_key: keys/beta-stark}}
    api_keys:
      - {{name: quoter, secret: "keys/beta-quoter"}}
      - {{name: hedger, secret: "dydx/{{name}}/api/hedger"}}
"""
)


def test_defaults_fill_what_an_account_leaves_out() -> None:
    alpha, beta = load(TWO_ACCOUNTS_WITH_DEFAULTS).accounts
    assert alpha.deposit == Decimal("1000")
    assert alpha.allowance == "max"
    assert alpha.signer == PrivateKeySigner(SecretRef("vault", "signers/mm-alpha", "private_key"))
    assert alpha.stark_key_path == "dydx/mm-alpha/stark"
    assert [(k.name, k.secret_path) for k in alpha.api_keys] == [
        ("default", "dydx/mm-alpha/api/default"),
        ("quoter", "dydx/mm-alpha/api/quoter"),
    ]


def test_an_accounts_own_values_win_and_api_keys_merge_by_name() -> None:
    beta = load(TWO_ACCOUNTS_WITH_DEFAULTS).account("mm-beta")
    assert beta.deposit == Decimal("8.2")
    assert beta.allowance == "exact"
    assert beta.signer is None  # signer: null opts out of the default signer: import-only
    assert beta.stark_key_path == "keys/beta-stark"
    assert [(k.name, k.secret_path) for k in beta.api_keys] == [
        ("default", "dydx/mm-beta/api/default"),
        ("quoter", "keys/beta-quoter"),
        ("hedger", "dydx/mm-beta/api/hedger"),
    ]
    assert beta.api_keys[0].is_default


def test_upper_case_template_gives_an_environment_variable_name() -> None:
    text = one_account('signer: {private_key: {env: "DYDX_KEY_{NAME}"}}')
    assert load(text).accounts[0].signer == PrivateKeySigner(SecretRef("env", "DYDX_KEY_MM_ALPHA"))


def test_minimal_account_defaults() -> None:
    account = load(one_account()).accounts[0]
    assert account.signer is None
    assert account.allowance == "exact"
    assert account.api_keys == ()
    assert account.address == ALPHA
    assert account.location == Location("provision.yaml", 6, 5)


def test_lower_case_addresses_are_checksummed() -> None:
    text = one_account().replace(ALPHA, ALPHA.lower())
    assert load(text).accounts[0].address == ALPHA


def test_file_references_and_keystores_resolve_against_the_manifest_directory(
    tmp_path: Path,
) -> None:
    text = (
        HEADER
        + f"""\
accounts:
  - name: from-file
    address: "{ALPHA}"
    deposit: "1"
    secrets: {{stark_key: a/stark}}
    signer: {{private_key: {{file: keys/alpha.key}}}}
  - name: from-keystore
    address: "{BETA}"
    deposit: "1"
    secrets: {{stark_key: b/stark}}
    signer:
      keystore: {{path: ../shared/beta.json, password: {{file: /run/secrets/ks-password}}}}
"""
    )
    manifest_dir = tmp_path / "ops"
    manifest_dir.mkdir()
    path = manifest_dir / "provision.yaml"
    path.write_text(text, encoding="utf-8")
    first, second = load_manifest(path, ENV).accounts  # none of these files exist: nothing is read
    assert first.signer == PrivateKeySigner(SecretRef("file", str(manifest_dir / "keys/alpha.key")))
    assert second.signer == KeystoreSigner(
        str(tmp_path / "shared/beta.json"), SecretRef("file", "/run/secrets/ks-password")
    )


def test_references_are_not_resolved_at_load_time() -> None:
    text = one_account("signer: {private_key: {env: SURELY_NOT_SET_ANYWHERE_12345}}")
    signer = load(text, env=ENV).accounts[0].signer
    assert isinstance(signer, PrivateKeySigner)
    assert signer.key.describe() == "env:SURELY_NOT_SET_ANYWHERE_12345"


def test_references_remember_where_they_were_written() -> None:
    text = one_account('signer: {private_key: {vault: "signers/1#private_key"}}')
    signer = load(text).accounts[0].signer
    assert isinstance(signer, PrivateKeySigner)
    assert signer.key.location == Location("provision.yaml", 10, 35)


def test_remote_signer() -> None:
    text = one_account("signer:\n  remote:\n    url: ${ETH_RPC_URL}\n    timeout_seconds: 2.5")
    assert load(text).accounts[0].signer == RemoteSigner("http://127.0.0.1:8545", 2.5)
    text = one_account('signer: {remote: {url: "https://signer.internal"}}')
    assert load(text).accounts[0].signer == RemoteSigner("https://signer.internal", 120.0)


@pytest.mark.parametrize(
    ("network", "chain_id", "api_url", "known", "confirmations"),
    [
        ("mainnet", 1, "https://api.dydx.exchange", MAINNET, 14),
        ("sepolia", 11155111, "https://api.stage.dydx.exchange", SEPOLIA, 14),
        ("sandbox", 11155111, "http://127.0.0.1:8080", SEPOLIA, 2),
    ],
)
def test_network_shorthands(
    network: str, chain_id: int, api_url: str, known: object, confirmations: int
) -> None:
    text = one_account().replace("network: sandbox", f"network: {network}")
    spec = load(text).network
    assert spec.name == network
    assert spec.chain_id == chain_id
    assert spec.api_url == api_url
    assert spec.rpc_url == "http://127.0.0.1:8545"
    assert spec.exchange_contract == known.exchange_contract  # type: ignore[attr-defined]
    assert spec.usdc_contract == known.usdc_contract  # type: ignore[attr-defined]
    assert spec.collateral_asset_id == known.collateral_asset_id  # type: ignore[attr-defined]
    assert spec.confirmations == confirmations


def test_network_shorthand_needs_its_rpc_variable() -> None:
    env = {k: v for k, v in ENV.items() if k != "ETH_RPC_URL"}
    (message,) = messages(one_account().replace("network: sandbox", "network: mainnet"), env)
    assert message.startswith(
        "provision.yaml:2:10: network 'mainnet' takes its rpc_url from ETH_RPC_URL"
    )


def test_network_block_takes_contract_defaults_from_the_chain() -> None:
    block = "network:\n  name: stage\n  chain_id: 11155111\n  api_url: https://a.example\n  rpc_url: ${ETH_RPC_URL}\n  confirmations: 3\n"
    spec = load(one_account().replace("network: sandbox\n", block)).network
    assert (spec.name, spec.chain_id, spec.confirmations) == ("stage", 11155111, 3)
    assert spec.exchange_contract == SEPOLIA.exchange_contract


def test_network_block_for_another_chain_with_explicit_contracts() -> None:
    block = f"""\
network:
  name: devnet
  chain_id: 31337
  api_url: http://127.0.0.1:8080
  rpc_url: http://127.0.0.1:8545
  exchange_contract: {BETA.lower()}
  usdc_contract: "{ALPHA}"
  collateral_asset_id: 0x02893294412A4C8F915F75892B395EBBF6859EC246EC365C3B1F56F47C3A0A5D
"""
    spec = load(one_account().replace("network: sandbox\n", block)).network
    assert spec.exchange_contract == BETA
    assert spec.usdc_contract == ALPHA
    # hex that looks like a key is fine here
    assert spec.collateral_asset_id == MAINNET.collateral_asset_id


def test_vault_defaults() -> None:
    vault = load(one_account()).vault
    assert vault.address == "http://127.0.0.1:8200"
    assert (vault.mount, vault.state_path, vault.namespace) == ("secret", "dydx-provisioner", None)
    assert vault.auth.method == "token"
    assert vault.auth.token == SecretRef("env", "VAULT_TOKEN")


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            "{method: token, token: {file: /run/vault-token}}",
            dict(method="token", token=SecretRef("file", "/run/vault-token")),
        ),
        (
            "{method: approle, role_id: prov, secret_id: {env: VAULT_SECRET_ID}}",
            dict(
                method="approle",
                role="prov",
                secret_id=SecretRef("env", "VAULT_SECRET_ID"),
                mount_path="approle",
            ),
        ),
        (
            "{method: jwt, role: ci, jwt: {env: CI_JOB_JWT}, mount_path: gitlab-jwt}",
            dict(
                method="jwt", role="ci", jwt=SecretRef("env", "CI_JOB_JWT"), mount_path="gitlab-jwt"
            ),
        ),
        (
            "{method: kubernetes, role: prov}",
            dict(
                method="kubernetes",
                role="prov",
                jwt=SecretRef("file", "/var/run/secrets/kubernetes.io/serviceaccount/token"),
                mount_path="kubernetes",
            ),
        ),
    ],
)
def test_vault_auth_methods(auth: str, expected: dict[str, object]) -> None:
    header = HEADER + f"  auth: {auth}\n  mount: kv\n  state_path: ops/dydx\n  namespace: trading\n"
    vault = load(one_account(header=header)).vault
    assert (vault.mount, vault.state_path, vault.namespace) == ("kv", "ops/dydx", "trading")
    for key, value in expected.items():
        assert getattr(vault.auth, key) == value, key


def test_interpolation_reads_the_given_environment_and_escapes() -> None:
    text = one_account(top='x-note: "costs $${HOME}, not ${WHO}"\n')
    manifest = load(text, env={**ENV, "WHO": "me"})
    assert manifest.extra == {"x-note": "costs ${HOME}, not me"}


def test_missing_variables_are_each_named_at_their_position() -> None:
    text = one_account(top="x-a: ${MISSING_ONE}\nx-b: ${MISSING_TWO} and ${MISSING_ONE}\n")
    assert [(d.location.line, d.location.column, d.message) for d in errors(text)] == [
        (5, 6, "environment variable MISSING_ONE is not set"),
        (6, 6, "environment variable MISSING_TWO is not set"),
        (6, 6, "environment variable MISSING_ONE is not set"),
    ]


def test_aliases_of_whole_values_work() -> None:
    text = (
        HEADER
        + f"""\
x-signer: &remote {{remote: {{url: "http://127.0.0.1:9000"}}}}
accounts:
  - {{name: a, address: "{ALPHA}", deposit: 1, secrets: {{stark_key: a/s}}, signer: *remote}}
  - {{name: b, address: "{BETA}", deposit: 2, secrets: {{stark_key: b/s}}, signer: *remote}}
"""
    )
    accounts = load(text).accounts
    assert [a.signer for a in accounts] == [RemoteSigner("http://127.0.0.1:9000")] * 2


def test_every_problem_is_reported_in_file_order() -> None:
    text = (
        one_account().replace('deposit: "10"', 'deposit: "-1"').replace("version: 1", "version: 9")
    )
    text += '  - name: mm-alpha\n    address: "0x0000000000000000000000000000000000000001"\n'
    found = errors(text)
    assert [(d.location.line, d.location.column) for d in found] == [
        (1, 10),  # version
        (8, 14),  # negative deposit
        (10, 5),  # the second account has no deposit...
        (10, 5),  # ...and no stark key path
        (10, 11),  # and reuses a name
    ]
    rendered = str(ManifestError(found))
    assert rendered.splitlines() == [str(d) for d in found]


def test_a_missing_file_is_a_plain_user_error(tmp_path: Path) -> None:
    with pytest.raises(ProvisionerError, match="not found; expected a path given with -f/--file"):
        load_manifest(tmp_path / "nope.yaml", ENV)


def test_a_file_that_is_not_utf8_names_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\nnetwork: sandbox # caf\xe9\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(path, ENV)
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.location.line, diagnostic.location.column) == (2, 23)
    assert "not UTF-8" in diagnostic.message


def test_recursive_aliases_are_refused_not_followed() -> None:
    text = one_account(top="x-loop: &loop [*loop]\n")
    (message,) = messages(text)
    assert "too large or too deeply nested" in message


def test_two_documents_in_one_file_are_refused() -> None:
    (message,) = messages(one_account() + "---\nversion: 1\n")
    assert "YAML syntax error" in message
