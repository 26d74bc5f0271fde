"""Vault identity (issue 16): jwt login against OpenBao's real jwt auth method, roles bound to
claims, renewal before reads, a re-login that reads the token source again, revocation."""

from __future__ import annotations

from pathlib import Path

import hvac
import pytest
from support.jwt_auth import MAIN_REF, PR_REF, JwtIssuer
from support.vault import ClientFactory

from provisioner.clients.vault import VaultError
from provisioner.manifest.model import SecretRef, VaultAuth
from provisioner.redact import Redactor

pytestmark = pytest.mark.sandbox

PLAN_POLICY = 'path "secret/metadata/*" { capabilities = ["read", "list"] }\n'
APPLY_POLICY = 'path "secret/*" { capabilities = ["create", "update", "read", "list"] }\n'


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def issuer(root: hvac.Client) -> JwtIssuer:
    root.sys.create_or_update_policy(name="test-pr-plan", policy=PLAN_POLICY)
    root.sys.create_or_update_policy(name="test-apply", policy=APPLY_POLICY)
    jwt = JwtIssuer(root)
    jwt.role("pr-plan", ref="refs/pull/*", policies=["test-pr-plan"])
    jwt.role("apply", ref=MAIN_REF, policies=["test-apply"])
    jwt.role(
        "short", ref="refs/pull/*", policies=["test-pr-plan"], token_ttl="60s", token_type="batch"
    )
    return jwt


def jwt_auth(issuer: JwtIssuer, role: str, source: SecretRef) -> VaultAuth:
    return VaultAuth(method="jwt", role=role, jwt=source, mount_path=issuer.mount)


def test_pull_request_token_logs_in_to_the_plan_role(
    connect_client: ClientFactory, issuer: JwtIssuer, redactor: Redactor, prefix: str
) -> None:
    token = issuer.token(ref=PR_REF)
    client = connect_client(
        auth=jwt_auth(issuer, "pr-plan", SecretRef("env", "VAULT_JWT")), env={"VAULT_JWT": token}
    )
    assert token in redactor
    assert client.stats["auth"] == 1
    # the plan role reads metadata only: a secret's data is out of its reach
    with pytest.raises(VaultError, match="permission denied"):
        client.read(f"{prefix}/stark")


def test_pull_request_token_is_refused_by_the_apply_role(
    connect_client: ClientFactory, issuer: JwtIssuer
) -> None:
    token = issuer.token(ref=PR_REF)
    with pytest.raises(VaultError, match='claim "ref" does not match') as err:
        connect_client(
            auth=jwt_auth(issuer, "apply", SecretRef("env", "VAULT_JWT")),
            env={"VAULT_JWT": token},
        )
    assert f"jwt login at auth/{issuer.mount}" in str(err.value)
    assert token not in str(err.value) and token.split(".")[2] not in str(err.value)


def test_main_branch_token_logs_in_to_the_apply_role_and_writes(
    connect_client: ClientFactory, issuer: JwtIssuer, prefix: str
) -> None:
    client = connect_client(
        auth=jwt_auth(issuer, "apply", SecretRef("env", "VAULT_JWT")),
        env={"VAULT_JWT": issuer.token(ref=MAIN_REF)},
    )
    client.write_owned(f"{prefix}/x", {"a": "b"}, account="mm", expected_version=0)
    assert client.read(f"{prefix}/x").entry.version == 1


def test_a_token_signed_by_another_key_is_refused(
    connect_client: ClientFactory, issuer: JwtIssuer
) -> None:
    header, payload, _ = issuer.token(ref=MAIN_REF).split(".")
    forged = f"{header}.{payload}." + "A" * 342  # a well-formed but wrong RS256 signature
    with pytest.raises(VaultError, match="jwt login .* (failed|was rejected)"):
        connect_client(
            auth=jwt_auth(issuer, "apply", SecretRef("env", "VAULT_JWT")),
            env={"VAULT_JWT": forged},
        )


def test_relogin_reads_the_token_source_afresh(
    connect_client: ClientFactory, issuer: JwtIssuer, redactor: Redactor, tmp_path: Path
) -> None:
    source = tmp_path / "token"
    source.write_text(issuer.token(ref=PR_REF))
    clock = FakeClock()
    client = connect_client(
        auth=jwt_auth(issuer, "short", SecretRef("file", str(source))), clock=clock
    )
    assert client.stats["auth"] == 1

    # the job's token rotated; the old one no longer is what the source holds
    source.write_text("not-a-jwt-anymore")
    clock.now += 50  # a batch token of 60 s with 10 s left: log in again
    with pytest.raises(VaultError, match="jwt login .* (failed|was rejected)"):
        client.ensure_fresh_token()

    fresh = issuer.token(ref=PR_REF)
    source.write_text(fresh)
    client.ensure_fresh_token()
    assert client.stats["auth"] == 3
    assert fresh in redactor


def test_token_is_renewed_before_reads_too(
    connect_client: ClientFactory, root: hvac.Client, prefix: str
) -> None:
    root.sys.create_or_update_policy(name="test-apply", policy=APPLY_POLICY)
    token = root.auth.token.create(policies=["test-apply"], ttl="1h", renewable=True)["auth"][
        "client_token"
    ]
    clock = FakeClock()
    client = connect_client(token=token, clock=clock)
    calls = client.stats["auth"]
    clock.now += 3500  # 100 s left
    client.read(f"{prefix}/nothing-here")
    assert client.stats["auth"] == calls + 1


def test_a_login_token_is_revoked_when_the_client_closes(
    connect_client: ClientFactory, issuer: JwtIssuer
) -> None:
    before = issuer.live_tokens("pr-plan")
    client = connect_client(
        auth=jwt_auth(issuer, "pr-plan", SecretRef("env", "VAULT_JWT")),
        env={"VAULT_JWT": issuer.token(ref=PR_REF)},
    )
    assert len(issuer.live_tokens("pr-plan") - before) == 1
    client.close()
    assert issuer.live_tokens("pr-plan") - before == set()


def test_a_login_token_is_kept_when_asked(connect_client: ClientFactory, issuer: JwtIssuer) -> None:
    before = issuer.live_tokens("pr-plan")
    client = connect_client(
        auth=jwt_auth(issuer, "pr-plan", SecretRef("env", "VAULT_JWT")),
        env={"VAULT_JWT": issuer.token(ref=PR_REF)},
        revoke_on_close=False,
    )
    client.close()
    assert len(issuer.live_tokens("pr-plan") - before) == 1


def test_a_given_token_is_never_revoked(
    connect_client: ClientFactory, root: hvac.Client, issuer: JwtIssuer
) -> None:
    token = root.auth.token.create(policies=["test-apply"], ttl="1h")["auth"]["client_token"]
    connect_client(token=token).close()  # the caller's token: not ours to revoke
    assert root.auth.token.lookup(token)["data"]["ttl"] > 0
