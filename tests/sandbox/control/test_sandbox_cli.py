"""`provision sandbox up | env | status | down` as a user runs it: idempotent, clean, clear when a part fails."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.sandbox

PROVISION = [sys.executable, "-m", "provisioner"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PROVISION, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "sbx"
    yield directory
    run("sandbox", "down", "--dir", str(directory))


def exports(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            out[name] = value
    return out


def test_up_twice_env_status_down_twice(box: Path) -> None:
    first = run("sandbox", "up", "--dir", str(box))
    assert first.returncode == 0, first.stderr
    pids = {p.name: p.read_text() for p in box.glob("*.pid")}
    assert set(pids) == {"vault.pid", "anvil.pid", "emulator.pid"}

    again = run("sandbox", "up", "--dir", str(box))
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("already running") == 3
    assert {p.name: p.read_text() for p in box.glob("*.pid")} == pids  # nothing restarted

    env = exports(run("sandbox", "env", "--dir", str(box)).stdout)
    assert set(env) == {"VAULT_ADDR", "VAULT_TOKEN", "ETH_RPC_URL", "DYDX_API_URL"}
    assert requests.get(f"{env['DYDX_API_URL']}/v3/time", timeout=5).status_code == 200
    chain = requests.post(
        env["ETH_RPC_URL"],
        json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        timeout=5,
    )
    assert int(chain.json()["result"], 16) == 11155111
    signer = requests.get(
        f"{env['VAULT_ADDR']}/v1/secret/data/sandbox/signers/0",
        headers={"X-Vault-Token": env["VAULT_TOKEN"]},
        timeout=5,
    )
    assert signer.json()["data"]["data"]["address"] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

    status = run("sandbox", "status", "--dir", str(box))
    assert status.returncode == 0 and status.stdout.count("ready") == 3

    down = run("sandbox", "down", "--dir", str(box))
    assert down.returncode == 0 and not box.exists()
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
    assert run("sandbox", "down", "--dir", str(box)).returncode == 0  # down twice is fine


def test_stale_pid_files_are_cleared(box: Path) -> None:
    box.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    for part in ("vault", "anvil", "emulator"):
        (box / f"{part}.pid").write_text(f"{dead.pid}\n")
    result = run("sandbox", "up", "--dir", str(box))
    assert result.returncode == 0, result.stderr
    assert "already running" not in result.stderr


def test_a_taken_port_gives_one_clear_line_and_exit_1(box: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, SANDBOX_ANVIL_PORT=str(port))
        result = run("sandbox", "up", "--dir", str(box), env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [
        f"error: anvil: port {port} is taken by another process; free it or set another port (see 'provision sandbox --help')"
    ]


def test_a_missing_binary_gives_one_clear_line_and_exit_1(box: Path) -> None:
    env = dict(os.environ, ANVIL_BIN=str(box.parent / "no-such-anvil"))
    result = run("sandbox", "up", "--dir", str(box), env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "error: cannot start" in result.stderr and "no-such-anvil" in result.stderr


def test_a_part_that_dies_at_start_names_its_log(box: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake-anvil"
    fake.write_text("#!/bin/sh\necho 'fake anvil: cannot bind' >&2\nexit 3\n")
    fake.chmod(0o755)
    result = run("sandbox", "up", "--dir", str(box), env=dict(os.environ, ANVIL_BIN=str(fake)))
    assert result.returncode == 1
    assert f"error: anvil exited during start-up; see {box / 'logs' / 'anvil.log'}" in result.stderr
    assert "cannot bind" in (box / "logs" / "anvil.log").read_text()


def test_a_failed_up_leaves_nothing_running(box: Path, tmp_path: Path) -> None:
    # Vault starts first; when anvil then fails, the Vault this `up` started must not linger.
    fake = tmp_path / "fake-anvil"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    result = run("sandbox", "up", "--dir", str(box), env=dict(os.environ, ANVIL_BIN=str(fake)))
    assert result.returncode == 1
    assert "vault: started" in result.stderr
    assert sorted(p.name for p in box.glob("*.pid")) == []
    vault_port = json.loads((box / "sandbox.json").read_text())["ports"]["vault"]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", vault_port)) != 0
    status = run("sandbox", "status", "--dir", str(box))
    assert status.returncode == 1 and "ready" not in status.stdout


def test_an_up_that_fails_leaves_parts_it_did_not_start(box: Path, tmp_path: Path) -> None:
    assert run("sandbox", "up", "--dir", str(box)).returncode == 0
    vault_pid = (box / "vault.pid").read_text()
    anvil_pid = int((box / "anvil.pid").read_text())
    os.kill(anvil_pid, 9)
    fake = tmp_path / "fake-anvil"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    result = run("sandbox", "up", "--dir", str(box), env=dict(os.environ, ANVIL_BIN=str(fake)))
    assert result.returncode == 1
    assert "vault: already running" in result.stderr
    assert (box / "vault.pid").read_text() == vault_pid
    os.kill(int(vault_pid), 0)  # still there: its in-memory secrets are kept
