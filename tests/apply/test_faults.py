"""Flaky networks (issue #7): dYdX answering 429 bursts, 5xx, slowly or not at all, and the
chain RPC briefly gone. apply converges, or stops with exit 1 and a summary naming the
failed account; every secret it wrote is complete and ours; a rerun converges without
paying twice."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.apply_runs import (
    Manifest,
    chain_client,
    make_accounts,
    read_metadata,
    read_secret,
    write_manifest,
)
from support.safety import (
    API_FIELDS,
    STARK_FIELDS,
    convergence_problems,
    emulator_faults,
    journal_keys,
    provision,
)
from support.tcp_proxy import TcpProxy

from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox


def _half_written(sandbox: SandboxInfo, m: Manifest) -> list[str]:
    """Destinations that hold anything but nothing or a complete secret of ours."""
    bad = []
    for acct in m.accounts:
        wanted = {m.stark_path(acct.name): STARK_FIELDS - {"position_id", "account_id"}}
        wanted.update({m.api_path(acct.name, k): API_FIELDS for k in acct.api_keys})
        for path, fields in wanted.items():
            found = read_secret(sandbox, path)
            if found is None:
                meta = read_metadata(sandbox, path)
                if meta and (meta.get("custom_metadata") or {}).get("managed-by") not in (
                    None,
                    "dydx-provisioner",
                ):
                    bad.append(f"{path}: metadata of someone else")
                continue
            data, meta = found
            if not fields <= set(data) or not all(data.values()):
                bad.append(f"{path}: fields {sorted(data)}")
            if (meta.get("custom_metadata") or {}).get("managed-by") != "dydx-provisioner":
                bad.append(f"{path}: data without our ownership")
    return bad


def _clean_failure(err: str) -> None:
    assert "Traceback" not in err
    assert "FAILED at" in err and "account(s) failed" in err, err


def test_dydx_429_bursts_5xx_latency_and_drops(sandbox: SandboxInfo, tmp_path: Path) -> None:
    accounts = make_accounts(
        sandbox,
        [
            {"name": "flaky-a", "deposit": "1.5", "api_keys": ["default", "hedger"]},
            {"name": "flaky-b", "deposit": "2", "api_keys": ["default", "hedger", "quoter"]},
        ],
    )
    m = write_manifest(tmp_path, accounts)
    # The first rule that matches a request decides, so the one-off faults come first.
    rules = [
        {"method": "GET", "path": "/v3/users/exists", "burst_429": 1, "times": 1},
        {"method": "POST", "path": "/v3/onboarding", "drop_rate": 1, "times": 1},
        {"method": "POST", "path": "/v3/api-keys", "error_rate": 1, "status": 502, "times": 1},
        {"method": "GET", "path": "/v3/accounts", "latency_ms": 400, "times": 4},
        {"path": "/v3", "error_rate": 0.15, "drop_rate": 0.1, "status": 503, "seed": 7},
    ]
    emulator_faults(sandbox, rules)
    try:
        first = provision(sandbox, "-v", "apply", "-f", str(m.path), "--auto-approve")
    finally:
        emulator_faults(sandbox, None)
    assert first.rc in (0, 1), str(first)
    if first.rc:
        _clean_failure(first.err)
    assert "Traceback" not in first.err
    # every retry is visible with -v, with its reason
    assert "HTTP 429 (rate limited)" in first.err and "retry" in first.err
    assert "checking whether the user exists" in first.err  # the dropped onboarding
    assert "it may have created a key" in first.err  # the 502 on POST /v3/api-keys
    assert _half_written(sandbox, m) == []

    again = provision(sandbox, "apply", "-f", str(m.path), "--auto-approve")
    assert again.rc == 0, str(again)
    with chain_client(sandbox) as chain:
        deposits = chain.deposits(refresh=True)
    assert convergence_problems(sandbox, m, deposits) == []


def test_chain_rpc_briefly_gone_then_gone_for_good(sandbox: SandboxInfo, tmp_path: Path) -> None:
    rpc = urlsplit(sandbox.rpc_url)
    proxy = TcpProxy(rpc.hostname or "127.0.0.1", rpc.port or 8545)
    [acct] = make_accounts(
        sandbox, [{"name": "rpc-gone", "deposit": "3.25", "api_keys": ["default"]}]
    )
    m = write_manifest(tmp_path, [acct])

    def blip() -> None:
        proxy.down()
        time.sleep(2.5)
        proxy.up()

    # Down for 2.5 s right after the node accepted registerUser and approve (the run rides
    # it out while simulating the next transaction), then for good right after it accepted
    # the deposit: the run must stop cleanly with the deposit journaled.
    proxy.after_answers(b"eth_sendRawTransaction", [blip, blip, proxy.down])
    try:
        run = provision(
            sandbox,
            "-v",
            "apply",
            "-f",
            str(m.path),
            "--auto-approve",
            env={"ETH_RPC_URL": proxy.url},
        )
    finally:
        proxy.down()
    err = run.err
    assert run.rc == 1, str(run)
    _clean_failure(err)
    # the blips were ridden out (approve and deposit are simulated and sent meanwhile)
    assert "approve sent" in err and "deposit sent" in err, err
    assert "could not connect" in err and "retry" in err, err  # and each retry was shown
    assert "rpc-gone: FAILED at confirmations" in err, err
    assert "cannot reach the Ethereum node" in err and "were broadcast and journaled" in err, err
    journaled = journal_keys(sandbox, m)
    assert [k for k in journaled if "/deposit-" in k], "the broadcast deposit is not journaled"
    # register and approve went out beside it, their confirmations not seen: kept too
    assert len(journaled) == 3, journaled
    assert _half_written(sandbox, m) == []

    proxy.up()
    try:
        again = provision(
            sandbox, "apply", "-f", str(m.path), "--auto-approve", env={"ETH_RPC_URL": proxy.url}
        )
    finally:
        proxy.down()
    assert again.rc == 0, str(again)
    assert "journaled deposit" in again.out
    with chain_client(sandbox) as chain:
        deposits = chain.deposits(refresh=True)
    assert convergence_problems(sandbox, m, deposits) == []  # exactly 3.25: paid once
