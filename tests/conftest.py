"""Shared fixtures. The real sandbox (OpenBao, anvil, emulator) is started once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import provisioner  # noqa: F401  (applies the dydx3/web3 import fix before any test imports them)
from provisioner.sandbox.control import Sandbox, SandboxConfig, SandboxInfo


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    """A running sandbox in a temporary directory, with relaxed rate limits unless a test asks otherwise.

    Set SANDBOX_TEST_DIR to reuse a running sandbox between local runs (it is then left up).
    """
    reuse = os.environ.get("SANDBOX_TEST_DIR")
    directory = Path(reuse) if reuse else tmp_path_factory.mktemp("sandbox")
    env = dict(os.environ)
    env.setdefault("SANDBOX_RATE_LIMITS", "relaxed")
    env.setdefault("SANDBOX_CONFIRMATIONS", "2")
    box = Sandbox(SandboxConfig.from_env(str(directory), env))
    info = box.up()
    try:
        yield info
    finally:
        if not reuse:
            box.down()


@pytest.fixture
def sandbox_env(sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch) -> SandboxInfo:
    """The sandbox's VAULT_ADDR / VAULT_TOKEN / ETH_RPC_URL / DYDX_API_URL in os.environ for one test."""
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    return sandbox
