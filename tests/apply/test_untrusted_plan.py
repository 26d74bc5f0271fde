"""Plans of manifests nobody reviewed yet (issue 16), as the CLI runs them on the sandbox.

A local listener (127.0.0.1 only) stands in for the attacker's server. For each hostile
manifest, `provision plan --untrusted-manifest` must open no connection to it, print no
canary value planted in its environment, and exit 1 at the manifest's file:line without a
traceback (the remote-signer manifest may plan, but calls nobody). A token whose policy reads
only KV metadata must plan a converged manifest with exit 0 under --detailed-exitcode.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest
import yaml
from eth_account import Account
from support.apply_runs import (
    Manifest,
    assert_no_secret,
    make_accounts,
    secret_values,
    vault,
    write_manifest,
)
from support.jwt_auth import MAIN_REF, PR_REF, JwtIssuer
from support.listener import AttackerListener, KeyedRpcProxy
from support.safety import Run, provision

from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox

SEPOLIA_CHAIN = "11155111"
METADATA_ONLY = 'path "secret/metadata/*" { capabilities = ["read", "list"] }\n'

# What a CI runner's environment holds and a pull request must never see.
CANARIES = {
    "CANARY_SECRET": "canary-" + secrets.token_hex(16),
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "canary-oidc-" + secrets.token_hex(16),
    "AWS_SECRET_ACCESS_KEY": "canary-aws-" + secrets.token_hex(16),
}


@pytest.fixture
def attacker() -> Iterator[AttackerListener]:
    with AttackerListener() as listener:
        yield listener


def base_text(prefix: str, address: str) -> str:
    return f"""\
version: 1
network: sandbox
vault:
  address: ${{VAULT_ADDR}}
  auth: {{method: token}}
  mount: secret
  state_path: {prefix}/state
accounts:
  - name: pr-one
    address: "{address}"
    deposit: "0"
    secrets:
      stark_key: {prefix}/pr-one/stark
    api_keys:
      - {{name: default, secret: {prefix}/pr-one/api/default}}
"""


def hostile(tmp_path: Path, replace: dict[str, str]) -> Path:
    """The base manifest with lines replaced (``old`` -> ``new``, each must match once)."""
    text = base_text(f"t-{secrets.token_hex(6)}", Account.create().address)
    for old, new in replace.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "pr" / "provision.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def plan_untrusted(
    sandbox: SandboxInfo, path: Path, *extra: str, env: dict[str, str] | None = None
) -> Run:
    return provision(
        sandbox,
        "plan",
        "-f",
        str(path),
        "--untrusted-manifest",
        "--allow-env",
        "VAULT_TOKEN",
        *extra,
        env={**CANARIES, "PROVISION_CHAIN_ID": SEPOLIA_CHAIN, **(env or {})},
        timeout=120,
    )


def plan_plain(sandbox: SandboxInfo, path: Path, *extra: str) -> Run:
    return provision(sandbox, "plan", "-f", str(path), *extra, env=CANARIES, timeout=120)


def assert_nothing_leaked(run: Run, attacker: AttackerListener, *more: str) -> None:
    assert "Traceback" not in run.err, run
    assert attacker.hits == 0, f"the attacker's listener was reached: {attacker.received!r}"
    assert_no_secret(run.out + run.err, [*CANARIES.values(), *more], str(run.args))


def assert_refused_at(run: Run, path: Path, line: int, attacker: AttackerListener) -> None:
    assert run.rc == 1, run
    assert f"{path}:{line}:" in run.err, run
    assert_nothing_leaked(run, attacker)


# -- endpoints are pinned outside the manifest ------------------------------------------------


def test_vault_elsewhere_is_refused_before_any_connection(
    sandbox: SandboxInfo, tmp_path: Path, attacker: AttackerListener
) -> None:
    path = hostile(tmp_path, {"address: ${VAULT_ADDR}": f"address: {attacker.url}"})
    run = plan_untrusted(sandbox, path)
    assert_refused_at(run, path, line_of(path, attacker.url), attacker)
    assert "VAULT_ADDR" in run.err
    assert_no_secret(run.out + run.err, [sandbox.vault_token], "the runner's Vault token")


@pytest.mark.parametrize(
    ("endpoints", "field", "names"),
    [
        (
            "  api_url: ${{DYDX_API_URL}}\n  rpc_url: {url}/${{CANARY_SECRET}}",
            "rpc_url",
            "",
        ),
        ("  api_url: ${{DYDX_API_URL}}\n  rpc_url: {url}/rpc", "rpc_url", "ETH_RPC_URL"),
        ("  api_url: {url}\n  rpc_url: ${{ETH_RPC_URL}}", "api_url", "DYDX_API_URL"),
    ],
    ids=["rpc-with-a-variable-in-its-path", "rpc", "dydx-api"],
)
def test_an_endpoint_elsewhere_is_refused(
    sandbox: SandboxInfo,
    tmp_path: Path,
    attacker: AttackerListener,
    endpoints: str,
    field: str,
    names: str,
) -> None:
    network = "network:\n  name: sandbox\n  chain_id: 11155111\n" + endpoints.format(
        url=attacker.url
    )
    path = hostile(tmp_path, {"network: sandbox": network})
    run = plan_untrusted(sandbox, path)
    assert_refused_at(run, path, line_of(path, field), attacker)
    assert names in run.err  # the variable whose pinned value it must use


def test_another_chain_than_the_pinned_one_is_refused(
    sandbox: SandboxInfo, tmp_path: Path, attacker: AttackerListener
) -> None:
    network = (
        "network:\n  name: sandbox\n  chain_id: 1\n"
        "  api_url: ${DYDX_API_URL}\n  rpc_url: ${ETH_RPC_URL}"
    )
    path = hostile(tmp_path, {"network: sandbox": network})
    run = plan_untrusted(sandbox, path)
    assert_refused_at(run, path, line_of(path, "chain_id"), attacker)


def test_untrusted_plan_needs_every_endpoint_pinned(
    sandbox: SandboxInfo, tmp_path: Path, attacker: AttackerListener
) -> None:
    path = hostile(tmp_path, {})
    run = plan_untrusted(sandbox, path, env={"PROVISION_CHAIN_ID": ""})
    assert run.rc == 1 and "PROVISION_CHAIN_ID" in run.err and "--chain-id" in run.err, run
    assert_nothing_leaked(run, attacker)


# -- interpolation only of allowed variables ----------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("name: pr-one", 'name: "pr-${CANARY_SECRET}"'),
        ("{name: default,", '{name: "k${AWS_SECRET_ACCESS_KEY}",'),
        ("stark_key: t-", "stark_key: ${ACTIONS_ID_TOKEN_REQUEST_TOKEN}/x-"),
    ],
    ids=["account-name", "api-key-name", "vault-path"],
)
def test_a_variable_that_was_not_allowed_is_an_error_that_shows_no_value(
    sandbox: SandboxInfo,
    tmp_path: Path,
    attacker: AttackerListener,
    old: str,
    new: str,
) -> None:
    path = hostile(tmp_path, {old: new})
    line = line_of(path, new)
    run = plan_untrusted(sandbox, path)
    assert_refused_at(run, path, line, attacker)
    assert "--allow-env" in run.err


def test_an_allowed_variable_is_interpolated(
    sandbox: SandboxInfo, tmp_path: Path, attacker: AttackerListener
) -> None:
    path = hostile(tmp_path, {"name: pr-one": 'name: "pr-${DESK}"'})
    run = plan_untrusted(sandbox, path, "--allow-env", "DESK", env={"DESK": "ldn"})
    assert run.rc == 0, run
    assert "pr-ldn" in run.out  # a value of six characters or more would be masked (README)
    assert_nothing_leaked(run, attacker)


# -- file references stay inside the manifest's directory (every mode) -------------------------


def _outside_token(tmp_path: Path) -> tuple[Path, str]:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    token = outside / "vault-token"
    token.write_text(CANARIES["CANARY_SECRET"] + "\n")
    return token, CANARIES["CANARY_SECRET"]


@pytest.mark.parametrize("form", ["dotdot", "absolute", "symlink"])
@pytest.mark.parametrize("mode", ["untrusted", "plain"])
def test_a_file_reference_outside_the_directory_is_refused(
    sandbox: SandboxInfo, tmp_path: Path, attacker: AttackerListener, form: str, mode: str
) -> None:
    token, _ = _outside_token(tmp_path)
    target = {"dotdot": "../outside/vault-token", "absolute": str(token), "symlink": "token-link"}
    path = hostile(
        tmp_path,
        {"auth: {method: token}": f"auth: {{method: token, token: {{file: {target[form]}}}}}"},
    )
    if form == "symlink":
        (path.parent / "token-link").symlink_to(token)
    run = plan_untrusted(sandbox, path) if mode == "untrusted" else plan_plain(sandbox, path)
    assert_refused_at(run, path, line_of(path, "file:"), attacker)


def test_a_file_reference_inside_the_directory_still_works(
    sandbox: SandboxInfo, tmp_path: Path, attacker: AttackerListener
) -> None:
    path = hostile(tmp_path, {"auth: {method: token}": "auth: {method: token, token: {file: t}}"})
    (path.parent / "t").write_text(sandbox.vault_token + "\n")
    run = plan_plain(sandbox, path)
    assert run.rc == 0, run
    assert_nothing_leaked(run, attacker, sandbox.vault_token)


# -- no signer resolved, no remote signer contacted -------------------------------------------


def test_a_remote_signer_elsewhere_is_never_called(
    sandbox: SandboxInfo, tmp_path: Path, attacker: AttackerListener
) -> None:
    path = hostile(
        tmp_path,
        {'deposit: "0"': f'deposit: "0"\n    signer: {{remote: {{url: "{attacker.url}"}}}}'},
    )
    run = plan_untrusted(sandbox, path, "--allow-insecure-http")
    assert run.rc == 0, run  # plans: the account has work, shown to do, its signer unchecked
    assert_nothing_leaked(run, attacker)
    assert "signer" in run.out and "not checked" in run.out.lower()


def test_a_private_key_signer_is_never_resolved(
    sandbox: SandboxInfo, tmp_path: Path, attacker: AttackerListener
) -> None:
    path = hostile(
        tmp_path,
        {'deposit: "0"': 'deposit: "0"\n    signer: {private_key: {env: CANARY_SECRET}}'},
    )
    run = plan_untrusted(sandbox, path)
    assert run.rc == 0, run
    assert "cannot be used" not in run.out and "not checked" in run.out.lower(), run
    assert_nothing_leaked(run, attacker)


# -- HTTPS unless loopback or --allow-insecure-http (every mode) -------------------------------
# 0.0.0.0 is not a loopback address, yet Linux routes a connection to it to this host: a
# broken check would reach the listener, and nothing ever leaves the machine.


@pytest.mark.parametrize("endpoint", ["vault", "rpc", "api", "remote-signer"])
def test_plain_http_to_a_non_loopback_host_is_refused(
    sandbox: SandboxInfo, tmp_path: Path, attacker: AttackerListener, endpoint: str
) -> None:
    url = f"http://0.0.0.0:{attacker.port}"
    network = "network:\n  name: sandbox\n  chain_id: 11155111\n  api_url: {api}\n  rpc_url: {rpc}"
    replace = {
        "vault": {"address: ${VAULT_ADDR}": f"address: {url}"},
        "rpc": {"network: sandbox": network.format(api=sandbox.api_url, rpc=url)},
        "api": {"network: sandbox": network.format(api=url, rpc=sandbox.rpc_url)},
        "remote-signer": {
            'deposit: "0"': f'deposit: "0"\n    signer: {{remote: {{url: "{url}"}}}}'
        },
    }[endpoint]
    path = hostile(tmp_path, replace)
    run = plan_plain(sandbox, path)
    assert_refused_at(run, path, line_of(path, url), attacker)
    assert "https" in run.err and "--allow-insecure-http" in run.err


# -- path secrets of URLs never printed, -vv included -------------------------------------------


def test_rpc_path_secrets_never_reach_debug_logs(
    sandbox: SandboxInfo, tmp_path: Path, attacker: AttackerListener
) -> None:
    key = "canary-rpc-key-" + secrets.token_hex(12)
    rpc = KeyedRpcProxy(sandbox.rpc_url)
    try:
        network = (
            "network:\n  name: sandbox\n  chain_id: 11155111\n  api_url: ${DYDX_API_URL}\n"
            f"  rpc_url: {rpc.url}/v2/{key}?apikey={key}x"
        )
        path = hostile(tmp_path, {"network: sandbox": network})
        run = provision(sandbox, "-vv", "plan", "-f", str(path), env=CANARIES)
    finally:
        rpc.close()
    assert run.rc == 0, run
    assert "DEBUG" in run.err  # the library debug lines were on
    assert_nothing_leaked(run, attacker, key)


# -- a metadata-only token plans a converged manifest -----------------------------------------


@pytest.fixture(scope="module")
def converged(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """One account applied by the trusted path: STARK key, onboarding, registration, default key."""
    (account,) = make_accounts(sandbox, [{"name": "pr-conv", "deposit": "0.5"}])
    m = write_manifest(tmp_path_factory.mktemp("converged"), [account])
    run = provision(sandbox, "apply", "-f", str(m.path), "--auto-approve", timeout=300)
    assert run.rc == 0, run
    return m


@pytest.fixture(scope="module")
def metadata_token(sandbox: SandboxInfo) -> str:
    root = vault(sandbox)
    root.sys.create_or_update_policy(name="test-pr-metadata", policy=METADATA_ONLY)
    token: str = root.auth.token.create(policies=["test-pr-metadata"], ttl="1h")["auth"][
        "client_token"
    ]
    return token


def test_metadata_only_token_plans_a_converged_manifest_with_exit_0(
    sandbox: SandboxInfo, converged: Manifest, metadata_token: str, attacker: AttackerListener
) -> None:
    run = plan_untrusted(
        sandbox, converged.path, "--detailed-exitcode", env={"VAULT_TOKEN": metadata_token}
    )
    assert run.rc == 0, run
    assert "not checked" in run.out.lower() and "API keys" in run.out, run
    assert "apply and the drift check do" in run.out
    assert_nothing_leaked(run, attacker, metadata_token, *secret_values(sandbox, converged))


def test_the_metadata_only_token_cannot_read_a_secret(
    sandbox: SandboxInfo, converged: Manifest, metadata_token: str
) -> None:
    """The policy really is metadata-only: a trusted plan, which reads values, is refused."""
    run = provision(sandbox, "plan", "-f", str(converged.path), env={"VAULT_TOKEN": metadata_token})
    assert run.rc == 1 and "permission denied" in run.err, run
    assert_no_secret(run.out + run.err, [metadata_token], "plain plan")


def test_metadata_only_plan_sees_a_secret_deleted_behind_its_back(
    sandbox: SandboxInfo,
    tmp_path_factory: pytest.TempPathFactory,
    metadata_token: str,
    attacker: AttackerListener,
) -> None:
    (account,) = make_accounts(sandbox, [{"name": "pr-drift", "deposit": "0"}])
    m = write_manifest(tmp_path_factory.mktemp("drift"), [account])
    assert provision(sandbox, "apply", "-f", str(m.path), "--auto-approve", timeout=300).rc == 0
    vault(sandbox).secrets.kv.v2.delete_latest_version_of_secret(
        path=m.api_path("pr-drift", "default"), mount_point="secret"
    )
    run = plan_untrusted(
        sandbox, m.path, "--detailed-exitcode", env={"VAULT_TOKEN": metadata_token}
    )
    assert run.rc == 2, run
    assert m.api_path("pr-drift", "default") in run.out
    assert_nothing_leaked(run, attacker, metadata_token)


# -- the pull-request flow with jwt login -----------------------------------------------------


@pytest.fixture(scope="module")
def issuer(sandbox: SandboxInfo) -> JwtIssuer:
    root: hvac.Client = vault(sandbox)
    root.sys.create_or_update_policy(name="test-pr-metadata", policy=METADATA_ONLY)
    root.sys.create_or_update_policy(
        name="test-apply-all",
        policy='path "secret/*" { capabilities = ["create", "update", "read", "list", "delete"] }\n',
    )
    jwt = JwtIssuer(root)
    jwt.role("pr-plan", ref="refs/pull/*", policies=["test-pr-metadata"])
    jwt.role("apply", ref=MAIN_REF, policies=["test-apply-all"])
    return jwt


def _jwt_manifest(m: Manifest, issuer: JwtIssuer, name: str) -> Path:
    doc: dict[str, Any] = yaml.safe_load(m.path.read_text())
    doc["vault"]["auth"] = {
        "method": "jwt",
        "role": "${VAULT_ROLE}",
        "jwt": {"env": "VAULT_JWT"},
        "mount_path": issuer.mount,
    }
    path = m.path.with_name(name)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_pull_request_plan_with_jwt_login_exits_0_and_revokes_its_token(
    sandbox: SandboxInfo, converged: Manifest, issuer: JwtIssuer, attacker: AttackerListener
) -> None:
    path = _jwt_manifest(converged, issuer, "pr-jwt.yaml")
    jwt = issuer.token(ref=PR_REF)
    before = issuer.live_tokens("pr-plan")
    run = provision(
        sandbox,
        "plan",
        "-f",
        str(path),
        "--untrusted-manifest",
        "--allow-env",
        "VAULT_ROLE",
        "--allow-env",
        "VAULT_JWT",
        "--detailed-exitcode",
        env={
            **CANARIES,
            "PROVISION_CHAIN_ID": SEPOLIA_CHAIN,
            "VAULT_ROLE": "pr-plan",
            "VAULT_JWT": jwt,
            "VAULT_TOKEN": "",
        },
    )
    assert run.rc == 0, run
    assert issuer.live_tokens("pr-plan") - before == set()  # revoked at the end of the run
    assert_nothing_leaked(run, attacker, jwt, *secret_values(sandbox, converged))


def test_pull_request_asking_for_the_apply_role_is_refused(
    sandbox: SandboxInfo, converged: Manifest, issuer: JwtIssuer, attacker: AttackerListener
) -> None:
    path = _jwt_manifest(converged, issuer, "pr-apply-role.yaml")
    text = path.read_text().replace("${VAULT_ROLE}", "apply")
    path.write_text(text)
    jwt = issuer.token(ref=PR_REF)
    run = provision(
        sandbox,
        "plan",
        "-f",
        str(path),
        "--untrusted-manifest",
        "--allow-env",
        "VAULT_JWT",
        env={**CANARIES, "PROVISION_CHAIN_ID": SEPOLIA_CHAIN, "VAULT_JWT": jwt},
    )
    assert run.rc == 1 and 'claim "ref" does not match' in run.err, run
    assert_nothing_leaked(run, attacker, jwt)


def test_a_trusted_run_revokes_its_login_token_unless_asked_to_keep_it(
    sandbox: SandboxInfo, converged: Manifest, issuer: JwtIssuer
) -> None:
    path = _jwt_manifest(converged, issuer, "main-jwt.yaml")
    env = {"VAULT_ROLE": "apply", "VAULT_TOKEN": ""}
    before = issuer.live_tokens("apply")
    run = provision(
        sandbox, "plan", "-f", str(path), env={**env, "VAULT_JWT": issuer.token(ref=MAIN_REF)}
    )
    assert run.rc == 0, run
    assert issuer.live_tokens("apply") - before == set()
    run = provision(
        sandbox,
        "plan",
        "-f",
        str(path),
        "--keep-vault-token",
        env={**env, "VAULT_JWT": issuer.token(ref=MAIN_REF)},
    )
    assert run.rc == 0, run
    assert len(issuer.live_tokens("apply") - before) == 1
