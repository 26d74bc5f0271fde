"""Logging in, keeping the token fresh and checking capabilities, against a real OpenBao."""

from __future__ import annotations

import socket
from collections.abc import Callable

import hvac
import pytest
from support.vault import ClientFactory, VaultServer

from provisioner.clients.vault import VaultClient, VaultError
from provisioner.manifest.model import SecretRef, VaultAuth, VaultSpec
from provisioner.redact import Redactor
from provisioner.secrets import SecretResolver

pytestmark = pytest.mark.sandbox

CANARY_TOKEN = "hvs.canary-token-Q2FuYXJ5VG9rZW4"
WRITER_POLICY = """
path "secret/data/app/*" { capabilities = ["create", "update", "read"] }
path "secret/metadata/app/*" { capabilities = ["create", "update", "read"] }
"""
READER_POLICY = """
path "secret/data/app/*" { capabilities = ["read"] }
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def policies(root: hvac.Client) -> None:
    root.sys.create_or_update_policy(name="test-writer", policy=WRITER_POLICY)
    root.sys.create_or_update_policy(name="test-reader", policy=READER_POLICY)


@pytest.fixture(scope="module")
def approle(root: hvac.Client, policies: None) -> Callable[..., tuple[str, str]]:
    """``approle(name, **role_settings)`` -> (role_id, secret_id), with approle enabled once."""
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")

    def make(name: str, **settings: object) -> tuple[str, str]:
        root.auth.approle.create_or_update_approle(
            role_name=name, token_policies=["test-writer"], **settings
        )
        role_id = root.auth.approle.read_role_id(role_name=name)["data"]["role_id"]
        secret_id = root.auth.approle.generate_secret_id(role_name=name)["data"]["secret_id"]
        return role_id, secret_id

    return make


def connect_approle(
    connect_client: ClientFactory, role_id: str, secret_id: str, **kwargs: object
) -> VaultClient:
    auth = VaultAuth(
        method="approle", role=role_id, secret_id=SecretRef("env", "APPROLE_SECRET_ID")
    )
    return connect_client(auth=auth, env={"APPROLE_SECRET_ID": secret_id}, **kwargs)


# -- token --------------------------------------------------------------------------------


def test_bad_token_is_refused_without_showing_it(
    connect_client: ClientFactory, vault_server: VaultServer
) -> None:
    with pytest.raises(VaultError) as err:
        connect_client(token=CANARY_TOKEN)
    message = str(err.value)
    assert vault_server.addr in message
    assert "env:VAULT_TOKEN" in message and "rejected" in message
    assert CANARY_TOKEN not in message and "\n" not in message


def test_missing_token_variable_is_named(vault_server: VaultServer, redactor: Redactor) -> None:
    spec = VaultSpec(address=vault_server.addr, auth=VaultAuth(method="token"))
    with pytest.raises(VaultError, match="VAULT_TOKEN is not set"):
        VaultClient.connect(spec, SecretResolver(redactor, env={}), redactor)


def test_unreachable_vault_is_named(redactor: Redactor) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    addr = f"http://127.0.0.1:{port}"
    spec = VaultSpec(address=addr, auth=VaultAuth(method="token"))
    resolver = SecretResolver(redactor, env={"VAULT_TOKEN": CANARY_TOKEN})
    with pytest.raises(VaultError) as err:
        VaultClient.connect(spec, resolver, redactor, timeout=2)
    assert addr in str(err.value) and "unreachable" in str(err.value)
    assert CANARY_TOKEN not in str(err.value)


def test_token_is_renewed_when_little_ttl_is_left(
    connect_client: ClientFactory, root: hvac.Client, policies: None, prefix: str
) -> None:
    token = root.auth.token.create(policies=["test-writer"], ttl="1h", renewable=True)["auth"][
        "client_token"
    ]
    clock = FakeClock()
    client = connect_client(token=token, clock=clock)
    auth_calls = client.stats["auth"]

    clock.now += 1800  # half the TTL left: nothing to do, no request
    client.ensure_fresh_token()
    assert client.stats["auth"] == auth_calls

    clock.now += 1700  # 100 s left
    client.write_state(f"app/{prefix}/x", {"n": 1}, cas=0)  # renews first
    assert client.stats["auth"] == auth_calls + 1
    clock.now += 1800
    client.ensure_fresh_token()
    assert client.stats["auth"] == auth_calls + 1  # the renewal bought a fresh hour


def test_expired_token_that_cannot_be_renewed(
    connect_client: ClientFactory, root: hvac.Client, policies: None
) -> None:
    token = root.auth.token.create(policies=["test-writer"], ttl="1h", renewable=False)["auth"][
        "client_token"
    ]
    clock = FakeClock()
    client = connect_client(token=token, clock=clock)
    clock.now += 3700
    with pytest.raises(VaultError, match="expired") as err:
        client.ensure_fresh_token()
    assert token not in str(err.value)


# -- approle ------------------------------------------------------------------------------


def test_approle_login_and_write(
    connect_client: ClientFactory,
    approle: Callable[..., tuple[str, str]],
    redactor: Redactor,
    prefix: str,
) -> None:
    role_id, secret_id = approle("provisioner")
    client = connect_approle(connect_client, role_id, secret_id)
    assert secret_id in redactor

    version = client.write_owned(
        f"app/{prefix}/stark",
        {"private_key": "0xabcdef123456"},
        account="mm-alpha",
        expected_version=0,
    )
    assert client.read(f"app/{prefix}/stark").entry.version == version
    with pytest.raises(VaultError, match="permission denied") as err:
        client.write_state("elsewhere/x", {"a": 1}, cas=0)
    assert "secret/elsewhere/x" in str(err.value)


def test_approle_bad_secret_id(
    connect_client: ClientFactory,
    approle: Callable[..., tuple[str, str]],
    vault_server: VaultServer,
) -> None:
    role_id, _ = approle("provisioner-bad")
    wrong = "00000000-canary-secret-id-000000000000"
    with pytest.raises(VaultError) as err:
        connect_approle(connect_client, role_id, wrong)
    message = str(err.value)
    assert vault_server.addr in message and "approle login at auth/approle" in message
    assert wrong not in message


def test_short_lived_approle_token_logs_in_again(
    connect_client: ClientFactory, approle: Callable[..., tuple[str, str]], prefix: str
) -> None:
    # batch tokens cannot be renewed: the only way to a fresh one is to log in again
    role_id, secret_id = approle("provisioner-short", token_ttl="60s", token_type="batch")
    clock = FakeClock()
    client = connect_approle(connect_client, role_id, secret_id, clock=clock)
    assert client.stats["auth"] == 1

    clock.now += 30
    client.ensure_fresh_token()
    assert client.stats["auth"] == 1

    clock.now += 20  # 10 s left
    client.ensure_fresh_token()
    assert client.stats["auth"] == 2
    client.write_owned(f"app/{prefix}", {"a": "b"}, account="x", expected_version=0)


# -- capabilities -------------------------------------------------------------------------


def test_missing_capabilities_names_paths(
    connect_client: ClientFactory, root: hvac.Client, policies: None
) -> None:
    token = root.auth.token.create(policies=["test-reader"], ttl="10m")["auth"]["client_token"]
    client = connect_client(token=token)
    wanted = {
        client.data_path("app/mm-alpha/stark"): {"read"},
        client.metadata_path("app/mm-alpha/stark"): {"create", "update"},
        client.data_path("other/thing"): {"read", "create"},
    }
    assert client.missing_capabilities(wanted) == {
        "secret/metadata/app/mm-alpha/stark": {"create", "update"},
        "secret/data/other/thing": {"read", "create"},
    }


def test_root_token_lacks_nothing(client: VaultClient) -> None:
    assert client.missing_capabilities({client.data_path("any/where"): {"read", "create"}}) == {}
    assert client.missing_capabilities({}) == {}
