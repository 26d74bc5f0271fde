"""A real OpenBao for the Vault client's tests: the shared ``sandbox`` fixture's.

Set VAULT_TESTS_OWN_BAO=1 to start a private ``bao server -dev`` instead (about a
second, no anvil or emulator): handy while the rest of the sandbox is broken.
Tests write under fresh prefixes, so a reused sandbox (SANDBOX_TEST_DIR) is fine.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests
from support.vault import MOUNT, ClientFactory, VaultServer

from provisioner.clients.vault import VaultClient
from provisioner.manifest.model import VaultAuth, VaultSpec
from provisioner.redact import Redactor
from provisioner.secrets import SecretResolver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bao_binary() -> str:
    return os.environ.get("BAO_BIN") or str(Path(sys.executable).parent / "bao")


@pytest.fixture(scope="session")
def vault_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VaultServer]:
    if os.environ.get("VAULT_TESTS_OWN_BAO") != "1":
        box = request.getfixturevalue("sandbox")
        yield VaultServer(addr=box.vault_addr, root_token=box.vault_token)
        return
    port = _free_port()
    token = "root-" + secrets.token_hex(12)
    log = tmp_path_factory.mktemp("bao") / "bao.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                _bao_binary(),
                "server",
                "-dev",
                f"-dev-root-token-id={token}",
                f"-dev-listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HOME": str(log.parent)},  # keep ~/.vault-token out of the way
        )
    addr = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{addr}/v1/sys/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bao dev server did not start; see {log}")
            time.sleep(0.05)
        yield VaultServer(addr=addr, root_token=token)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def root(vault_server: VaultServer) -> hvac.Client:
    """A plain hvac client with the root token: plays "someone else" and sets up policies."""
    return hvac.Client(url=vault_server.addr, token=vault_server.root_token)


@pytest.fixture
def prefix() -> str:
    """A fresh folder per test, so tests never see each other's secrets."""
    return f"tests/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


@pytest.fixture
def connect_client(vault_server: VaultServer, redactor: Redactor) -> ClientFactory:
    """``connect_client(token=..., auth=..., env=..., **connect_kwargs)``: a logged-in client."""

    def connect(
        token: str | None = None,
        auth: VaultAuth | None = None,
        env: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> VaultClient:
        env = {"VAULT_TOKEN": vault_server.root_token if token is None else token, **(env or {})}
        resolver = SecretResolver(redactor, env=env)
        spec = VaultSpec(
            address=vault_server.addr, auth=auth or VaultAuth(method="token"), mount=MOUNT
        )
        client = VaultClient.connect(spec, resolver, redactor, **kwargs)
        resolver.attach_vault(client)
        return client

    return connect


@pytest.fixture
def client(connect_client: ClientFactory) -> VaultClient:
    return connect_client()
