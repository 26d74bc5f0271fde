"""An account's dependent transactions go out back to back (issue #21): register, approve and
deposit in nonce order, each simulated on the pending state, so they can share one block; and a
deposit that cannot happen after its approve went out leaves no allowance standing.

The one-block test runs on a sandbox of its own whose mining it pauses (anvil's RPC can set
interval mining only in whole seconds, which would slow every later test of the shared one).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from support.apply_runs import (
    PROVISION,
    REPO,
    chain_client,
    make_accounts,
    set_usdc,
    web3,
    write_manifest,
)
from support.money import deposit_logs, journal_entries, stark_public
from support.safety import convergence_problems

from provisioner.money import to_base_units
from provisioner.sandbox import chain_setup
from provisioner.sandbox.control import Sandbox, SandboxConfig, SandboxInfo

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(300)]

REGISTER = "0xdd2414d4"  # registerUser(address,uint256,bytes)
APPROVE = "0x095ea7b3"  # approve(address,uint256)
DEPOSIT = "0x2505c3d9"  # deposit(uint256,uint256,uint256,uint256)


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    answer = requests.post(url, json=body, timeout=10).json()
    assert "error" not in answer, answer
    return answer["result"]


def _start(sandbox: SandboxInfo, tmp: Path, args: list[str], failpoint: str = "") -> tuple[
    subprocess.Popen[bytes], Path
]:  # fmt: skip
    env = {**os.environ, **sandbox.env(), "NO_COLOR": "1"}
    env.pop("PROVISION_FAILPOINT", None)
    if failpoint:
        env["PROVISION_FAILPOINT"] = failpoint
    err = tmp / "apply.err"
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [PROVISION, "-v", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=stderr, env=env, cwd=REPO,
        )  # fmt: skip
    return proc, err


def _until(what: str, check: Any, proc: subprocess.Popen[bytes], err: Path, timeout: float = 120) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, f"apply ended before {what}:\n{err.read_text()}"
        assert time.monotonic() < deadline, f"never {what}:\n{err.read_text()}"
        time.sleep(0.05)


def _selector(tx: Any) -> str:
    data = tx["input"]
    text = data if isinstance(data, str) else data.hex()
    return ("0x" + text.removeprefix("0x"))[:10]


def _state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture(scope="module")
def paused_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    """A sandbox of this module's own, mining a block every second until a test pauses it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    env.update(SANDBOX_RATE_LIMITS="relaxed", SANDBOX_CONFIRMATIONS="2", SANDBOX_BLOCK_TIME="1")
    box = Sandbox(SandboxConfig.from_env(str(tmp_path_factory.mktemp("paused-box")), env))
    info = box.up()
    try:
        yield info
    finally:
        box.down()


def test_register_approve_and_deposit_go_out_in_nonce_order_into_one_block(
    paused_box: SandboxInfo, tmp_path: Path
) -> None:
    sandbox = paused_box
    [acct] = make_accounts(sandbox, [{"name": "piped", "deposit": "2.5"}])
    m = write_manifest(tmp_path, [acct])
    w3 = web3(sandbox)
    first = w3.eth.get_transaction_count(acct.address)
    _rpc(sandbox.rpc_url, "evm_setIntervalMining", [0])  # no block until this test mines one
    proc, err = _start(sandbox, tmp_path, ["apply", "-f", str(m.path), "--auto-approve"])
    try:
        pooled = lambda: w3.eth.get_transaction_count(acct.address, "pending") == first + 3  # noqa: E731
        _until("three transactions in the pool", pooled, proc, err)
        said = err.read_text()
        assert "deposit sent" in said and " mined" not in said, said  # sent before any block
        head = w3.eth.block_number
        _rpc(sandbox.rpc_url, "evm_mine", [])
        block = w3.eth.get_block(head + 1, full_transactions=True)
    finally:
        _rpc(sandbox.rpc_url, "evm_setIntervalMining", [1])  # the confirmations come on their own
    assert proc.wait(timeout=120) == 0, err.read_text()
    ours = [tx for tx in block["transactions"] if tx["from"].lower() == acct.address.lower()]
    assert [tx["nonce"] for tx in ours] == [first, first + 1, first + 2]
    assert [_selector(tx) for tx in ours] == [REGISTER, APPROVE, DEPOSIT]
    for tx in ours:
        assert w3.eth.get_transaction_receipt(tx["hash"])["status"] == 1
    said = err.read_text()
    assert said.index("deposit sent") < said.index("register mined")
    for intent in ("register", "approve", "deposit"):
        assert f"{intent} confirmed" in said, said
    assert journal_entries(sandbox, m.state_path) == {}  # forgotten, once final
    with chain_client(sandbox) as chain:
        assert convergence_problems(sandbox, m, chain.deposits(refresh=True)) == []


def test_a_deposit_whose_simulation_fails_after_its_approve_revokes_the_allowance(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    """The approve is in the pool when the wallet's USDC goes (the run is paused there); the
    deposit's simulation on the pending state then fails: approve(0) follows, nothing is
    deposited, the step fails saying so, and every entry is forgotten once final."""
    [acct] = make_accounts(sandbox, [{"name": "revoked", "deposit": "3"}])
    m = write_manifest(tmp_path, [acct])
    proc, err = _start(
        sandbox, tmp_path, ["apply", "-f", str(m.path), "--auto-approve"],
        failpoint="after_step:approve=SIGSTOP",
    )  # fmt: skip
    try:
        _until("paused after the approve", lambda: _state_of(proc.pid) == "T", proc, err)
        set_usdc(sandbox, [acct.address], 0)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=120) == 1, err.read_text()
    said = err.read_text()
    assert "the allowance this run approved was revoked" in said, said
    assert "Traceback" not in said
    w3 = web3(sandbox)
    usdc = chain_setup.usdc_contract(w3)
    exchange = chain_setup.exchange_contract(w3).address
    assert usdc.functions.allowance(acct.address, exchange).call() == 0
    approvals = [
        tx
        for block in range(max(w3.eth.block_number - 30, 0), w3.eth.block_number + 1)
        for tx in w3.eth.get_block(block, full_transactions=True)["transactions"]
        if tx["from"].lower() == acct.address.lower() and _selector(tx) == APPROVE
    ]
    assert len(approvals) == 2  # the approve, then approve(0) right behind it
    assert approvals[1]["nonce"] == approvals[0]["nonce"] + 1
    assert journal_entries(sandbox, m.state_path) == {}
    stark = stark_public(sandbox, m.stark_path("revoked"))
    assert deposit_logs(sandbox, stark) == []
    # once the wallet is funded again, a plain rerun approves and deposits exactly the target
    set_usdc(sandbox, [acct.address], to_base_units(Decimal(10)))
    rerun = subprocess.run(
        [PROVISION, "apply", "-f", str(m.path), "--auto-approve"], capture_output=True,
        text=True, env={**os.environ, **sandbox.env(), "NO_COLOR": "1"}, cwd=REPO, timeout=180,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert len(deposit_logs(sandbox, stark)) == 1
    with chain_client(sandbox) as chain:
        assert convergence_problems(sandbox, m, chain.deposits(refresh=True)) == []
