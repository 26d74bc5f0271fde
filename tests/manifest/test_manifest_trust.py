"""How far a manifest is trusted (issue 16): variables it may read, endpoints it may name,
files it may reference. Pure loader tests: no network, no secret read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.manifest import ENV, HEADER, one_account

from provisioner.manifest.diagnostics import ManifestError
from provisioner.manifest.loader import parse_manifest
from provisioner.manifest.trust import LoadPolicy, PinnedEndpoints, is_loopback, same_endpoint
from provisioner.redact import Redactor

PINS = PinnedEndpoints(
    vault_addr=ENV["VAULT_ADDR"],
    api_url=ENV["DYDX_API_URL"],
    rpc_url=ENV["ETH_RPC_URL"],
    chain_id=11155111,
)
CANARY = "canary-" + "9f8e7d6c5b4a" * 2
RUNNER_ENV = {**ENV, "CANARY": CANARY, "DESK": "ldn"}


def untrusted(*allowed: str, insecure: bool = False) -> LoadPolicy:
    return LoadPolicy.untrusted(PINS, frozenset(allowed), allow_insecure_http=insecure)


def problems(text: str, policy: LoadPolicy, base_dir: str = "/srv/m") -> list[str]:
    with pytest.raises(ManifestError) as err:
        parse_manifest(text, "provision.yaml", RUNNER_ENV, base_dir=base_dir, policy=policy)
    return [str(d) for d in err.value.diagnostics]


# -- interpolation ----------------------------------------------------------------------------


def test_a_variable_that_was_not_allowed_is_refused_unread_at_its_line() -> None:
    text = one_account().replace("name: mm-alpha", 'name: "mm-${CANARY}"')
    (message,) = problems(text, untrusted())
    assert message.startswith("provision.yaml:6:")
    assert "CANARY is not allowed in an untrusted manifest" in message
    assert "--allow-env CANARY" in message and CANARY not in message


def test_allowed_variables_and_the_pins_are_interpolated() -> None:
    text = one_account().replace("name: mm-alpha", 'name: "mm-${DESK}"')
    seen: list[str] = []
    manifest = parse_manifest(
        text, "p.yaml", RUNNER_ENV, base_dir="/m", policy=untrusted("DESK"), on_value=seen.append
    )
    assert manifest.accounts[0].name == "mm-ldn"
    assert manifest.vault.address == PINS.vault_addr  # ${VAULT_ADDR} reads the pin
    assert "ldn" in seen and PINS.vault_addr in seen


def test_the_pins_replace_the_environment_for_their_variables() -> None:
    env = {**RUNNER_ENV, "VAULT_ADDR": "http://127.0.0.1:9999"}
    manifest = parse_manifest(one_account(), "p.yaml", env, base_dir="/m", policy=untrusted())
    assert manifest.vault.address == PINS.vault_addr


def test_a_trusted_manifest_registers_every_interpolated_value() -> None:
    redactor = Redactor()
    text = one_account().replace("name: mm-alpha", 'name: "Mm-${DESK}x${CANARY}"')
    with pytest.raises(ManifestError) as err:  # the name is not valid: the message quotes it
        parse_manifest(text, "p.yaml", RUNNER_ENV, base_dir="/m", on_value=redactor.register)
    assert CANARY in str(err.value) and CANARY not in redactor.redact(str(err.value))


# -- endpoints --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "variable"),
    [
        ("address: ${VAULT_ADDR}", "address: https://vault.attacker.example", "VAULT_ADDR"),
        (
            "network: sandbox",
            "network: {name: s, chain_id: 11155111, api_url: 'https://x.example', rpc_url: '${ETH_RPC_URL}'}",
            "DYDX_API_URL",
        ),
        (
            "network: sandbox",
            "network: {name: s, chain_id: 11155111, api_url: '${DYDX_API_URL}', rpc_url: 'https://rpc.example/k'}",
            "ETH_RPC_URL",
        ),
    ],
    ids=["vault", "api", "rpc"],
)
def test_an_endpoint_other_than_the_pinned_one_is_refused(
    old: str, new: str, variable: str
) -> None:
    text = one_account().replace(old, new)
    (message,) = problems(text, untrusted())
    assert f"pinned by {variable}" in message and "example" not in message


def test_the_chain_must_be_the_pinned_one() -> None:
    text = one_account().replace(
        "network: sandbox",
        "network:\n  name: s\n  chain_id: 1\n  api_url: ${DYDX_API_URL}\n  rpc_url: ${ETH_RPC_URL}",
    )
    (message,) = problems(text, untrusted())
    assert message.startswith("provision.yaml:4:") and "PROVISION_CHAIN_ID" in message


def test_same_endpoint_ignores_what_does_not_change_where_a_request_goes() -> None:
    assert same_endpoint("https://Vault.example:443/", "https://vault.example")
    assert not same_endpoint("https://vault.example", "https://vault.example.attacker.io")
    assert not same_endpoint("https://rpc.example/v2/a", "https://rpc.example/v2/b")
    assert not same_endpoint("https://u:p@rpc.example", "https://rpc.example")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host.strip("[]"))


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "localhost.example", "vault", ""])
def test_hosts_that_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("address: ${VAULT_ADDR}", "address: http://vault.internal:8200"),
        (
            "network: sandbox",
            "network: {name: s, chain_id: 11155111, api_url: 'http://10.1.2.3', rpc_url: 'http://127.0.0.1:8545'}",
        ),
        (
            'deposit: "10"',
            'deposit: "10"\n    signer: {remote: {url: "http://signer.internal:8550"}}',
        ),
    ],
    ids=["vault", "api", "remote-signer"],
)
def test_plain_http_is_refused_unless_loopback_or_allowed(old: str, new: str) -> None:
    text = one_account().replace(old, new)
    (message,) = problems(text, LoadPolicy())
    assert "plain HTTP" in message and "--allow-insecure-http" in message
    parse_manifest(
        text, "p.yaml", RUNNER_ENV, base_dir="/m", policy=LoadPolicy(allow_insecure_http=True)
    )


def test_plain_http_to_loopback_is_fine() -> None:
    parse_manifest(one_account(), "p.yaml", RUNNER_ENV, base_dir="/m")


# -- file references stay inside the manifest's directory (every mode) --------------------------


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("/etc/passwd", "is an absolute path"),
        ("~/.aws/credentials", "is an absolute path"),
        ("../secrets/key", "leaves the manifest's directory"),
        ("keys/../../key", "leaves the manifest's directory"),
    ],
)
@pytest.mark.parametrize("policy", [LoadPolicy(), untrusted()], ids=["trusted", "untrusted"])
def test_file_references_outside_the_directory_are_refused(
    target: str, why: str, policy: LoadPolicy
) -> None:
    text = one_account(f"signer: {{private_key: {{file: '{target}'}}}}")
    (message,) = problems(text, policy)
    assert why in message and target not in message and message.startswith("provision.yaml:")


def test_a_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    inside = tmp_path / "manifests"
    inside.mkdir()
    (tmp_path / "outside.key").write_text("0x" + "ab" * 32)
    os.symlink(tmp_path / "outside.key", inside / "key")
    os.symlink(tmp_path, inside / "up")
    for target in ("key", "up/outside.key"):
        text = one_account(f"signer: {{private_key: {{file: {target}}}}}")
        (message,) = problems(text, LoadPolicy(), base_dir=str(inside))
        assert "through a symlink" in message


def test_a_keystore_path_outside_the_directory_is_refused() -> None:
    text = one_account("signer: {keystore: {path: ../ks.json, password: {env: KS}}}")
    (message,) = problems(text, LoadPolicy())
    assert "leaves the manifest's directory" in message


def test_a_file_inside_the_directory_is_fine(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    text = one_account("signer: {private_key: {file: keys/alpha.key}}")
    manifest = parse_manifest(text, "p.yaml", RUNNER_ENV, base_dir=str(tmp_path))
    signer = manifest.accounts[0].signer
    assert signer is not None and signer.kind == "private_key"
    assert signer.key.target == str(tmp_path / "keys" / "alpha.key")  # type: ignore[union-attr]
    assert HEADER
