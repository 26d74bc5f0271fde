"""Emulators started by the tests themselves (fresh SQLite, chosen flags) on the session sandbox's chain."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.emulator import EmulatorProcess, launch

from provisioner.sandbox.control import SandboxInfo

RELAXED = ("--admin", "--rate-limits", "relaxed", "--poll-interval", "0.1")
PENDING_CONFIRMATIONS = "40"  # ~10 s of 0.25 s sandbox blocks: long enough to see PENDING


@pytest.fixture(scope="module")
def emulator(
    sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorProcess]:
    """One relaxed emulator with the admin surface, shared by a test module."""
    process = launch(
        sandbox.rpc_url,
        tmp_path_factory.mktemp("emulator"),
        *RELAXED,
        "--confirmations",
        PENDING_CONFIRMATIONS,
    )
    yield process
    process.stop()


@pytest.fixture
def start_emulator(
    sandbox: SandboxInfo, tmp_path: Path
) -> Iterator[Callable[..., EmulatorProcess]]:
    """Starts emulators with the given flags for one test; all are stopped after it."""
    started: list[EmulatorProcess] = []

    def _start(*flags: str, name: str = "emulator") -> EmulatorProcess:
        process = launch(sandbox.rpc_url, tmp_path, *flags, name=name)
        started.append(process)
        return process

    yield _start
    for process in started:
        process.stop(signal.SIGKILL)


@pytest.fixture
def clean_faults(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    emulator.admin("DELETE", "/admin/faults")
    yield emulator
    emulator.admin("DELETE", "/admin/faults")
