"""Helpers for the chain tests: start/stop anvil, random STARK keys, call types."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from web3.contract import ContractFunction
from web3.types import TxReceipt

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL = REPO_ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
STARK_P = 0x800000000000011000000000000000000000000000000000000000000000001
STARK_BETA = 0x6F21413EFBE40DE150E596D72F7A8C5609AD26C15C915C1F4CDFCB99CEE9E89
STARTUP_TIMEOUT_S = 15.0

Send = Callable[[ContractFunction, str], TxReceipt]
RevertReason = Callable[[ContractFunction, str], str]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(rpc_url: str, method: str, *params: object) -> object:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    response = requests.post(rpc_url, json=body, timeout=10).json()
    assert "error" not in response, response
    return response["result"]


def _answers(rpc_url: str) -> bool:
    try:
        rpc(rpc_url, "eth_chainId")
    except requests.RequestException:
        return False
    return True


def start_anvil(
    log_file: Path, *extra: str, chain_id: int = 11155111
) -> tuple[subprocess.Popen[bytes], str]:
    """An anvil (automine unless `extra` says otherwise) on a free port, already answering."""
    if not ANVIL.exists():
        pytest.fail(f"{ANVIL} is missing: run 'make install'")
    port = free_port()
    argv = [str(ANVIL), "--chain-id", str(chain_id), "--host", "127.0.0.1", "--port", str(port)]
    with open(log_file, "wb") as log:
        proc = subprocess.Popen([*argv, *extra], stdout=log, stderr=subprocess.STDOUT)
    rpc_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not _answers(rpc_url):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_anvil(proc)
            pytest.fail(f"anvil did not start:\n{log_file.read_text()}")
        time.sleep(0.05)
    return proc, rpc_url


def stop_anvil(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def random_stark_key() -> int:
    """A fresh x coordinate of a STARK curve point: x^3 + x + beta is a non-zero square mod p."""
    while True:
        x = secrets.randbelow(STARK_P - 1) + 1
        rhs = (x * x * x + x + STARK_BETA) % STARK_P
        if pow(rhs, (STARK_P - 1) // 2, STARK_P) == 1:
            return x
