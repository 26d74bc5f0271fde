"""The money-path invariants of issue 15, each driven through the CLI against the sandbox:
what was reviewed is what is paid, the default key is untouchable, and no custody signer,
reorg, rename, stranger's transaction or late approval can make a run pay twice."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.apply_runs import (
    PROVISION,
    REPO,
    Manifest,
    TestAccount,
    chain_client,
    emulator_stats,
    make_accounts,
    nonces,
    read_secret,
    tree_versions,
    write_manifest,
)
from support.money import (
    DEPOSIT_SELECTOR,
    Recording,
    StandInSigner,
    deposit_logs,
    forwarder,
    journal_entries,
    rpc,
    stark_public,
    wait_until,
    write_owned,
)
from support.safety import Run, listed_keys, provision

from provisioner.money import to_base_units
from provisioner.networks import SEPOLIA
from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox

SIGKILL = -9


def _network(confirmations: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "name": "sandbox",
        "chain_id": SEPOLIA.chain_id,
        "api_url": "${DYDX_API_URL}",
        "rpc_url": "${ETH_RPC_URL}",
        "confirmations": confirmations,
        **extra,
    }


def _edit(m: Manifest, account: dict[str, Any] | None = None, **top: Any) -> None:
    """Set fields of the (only) account and top-level keys in the manifest file."""
    doc = yaml.safe_load(m.path.read_text())
    doc["accounts"][0].update(account or {})
    doc.update(top)
    m.path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _total(sandbox: SandboxInfo, m: Manifest, name: str) -> int:
    key = stark_public(sandbox, m.stark_path(name))
    with chain_client(sandbox) as chain:
        return sum(v for (k, _pos), v in chain.deposits(refresh=True).items() if k == key)


def _apply(sandbox: SandboxInfo, m: Manifest, *args: str, **kw: Any) -> Run:
    return provision(sandbox, "-v", "apply", "-f", str(m.path), *args, **kw)


# -- 1. a saved plan is applied only if planning again gives exactly its steps -----------------


def test_an_edited_saved_plan_is_refused_and_nothing_is_sent(
    sandbox_env: SandboxInfo, tmp_path: Path
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "edited", "deposit": "5"}])
    m = write_manifest(tmp_path, [acct])
    _edit(m, {"allowance": "max"})
    assert _apply(sandbox, m, "--auto-approve").rc == 0
    acct.deposit = "7"
    m.rewrite()
    _edit(m, {"allowance": "max"})
    reviewed = tmp_path / "p.plan"
    assert provision(sandbox, "plan", "-f", str(m.path), "--out", str(reviewed)).rc == 0
    doc = json.loads(reviewed.read_text())
    [step] = [s for a in doc["accounts"] for s in a["steps"] if s["kind"] == "deposit"]
    assert step["params"] == {"amount": "2000000", "target": "7000000"}
    assert step["summary"] == "deposit 2 USDC"
    step["params"] = {"amount": "900000000", "target": "905000000"}
    edited = tmp_path / "edited.plan"
    edited.write_text(json.dumps(doc))
    before = nonces(sandbox, [acct.address])

    refused = _apply(sandbox, m, str(edited))
    assert refused.rc == 1, str(refused)
    assert "edited/deposit" in refused.err and "amount" in refused.err, refused.err
    assert "900000000" in refused.err and "2000000" in refused.err, refused.err
    assert nonces(sandbox, [acct.address]) == before
    assert _total(sandbox, m, "edited") == to_base_units(Decimal(5))

    # the options are part of what was reviewed
    pruning = _apply(sandbox, m, str(reviewed), "--prune-api-keys")
    assert pruning.rc == 1 and "--prune-api-keys" in pruning.err, str(pruning)
    sharded = _apply(sandbox, m, str(reviewed), "--shard", "0/1")
    assert sharded.rc == 1 and "--shard" in sharded.err, str(sharded)
    deriving = _apply(sandbox, m, str(reviewed), "--derive")
    assert deriving.rc == 1 and "--derive" in deriving.err, str(deriving)
    assert nonces(sandbox, [acct.address]) == before

    # the plan as reviewed: what is printed is what is paid
    applied = _apply(sandbox, m, str(reviewed))
    assert applied.rc == 0, str(applied)
    # the log says what the step did, with the numbers it used (issue 17)
    assert "edited: done: sent a deposit of 2 USDC (5 of 7 already there)" in applied.err, (
        applied.err
    )
    assert _total(sandbox, m, "edited") == to_base_units(Decimal(7))


# -- 2. the default key is the derived one ------------------------------------------------------


def test_prune_never_deletes_the_default_key_whatever_its_destination_holds(
    sandbox_env: SandboxInfo, tmp_path: Path
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "dflt", "api_keys": ["default", "hedger"]}])
    m = write_manifest(tmp_path, [acct])
    assert _apply(sandbox, m, "--auto-approve").rc == 0
    default_path, hedger_path = m.api_path("dflt", "default"), m.api_path("dflt", "hedger")
    real_default = read_secret(sandbox, default_path)
    hedger = read_secret(sandbox, hedger_path)
    assert real_default and hedger
    y, h = real_default[0]["key"], hedger[0]["key"]
    write_owned(sandbox, default_path, hedger[0])  # a restore gone wrong: hedger's credentials
    acct.api_keys = ["default"]
    m.rewrite()

    plan = provision(sandbox, "plan", "-f", str(m.path), "--prune-api-keys", "--format", "json")
    assert plan.rc == 0, str(plan)
    doc = json.loads(plan.out)
    notes = [n["message"] for a in doc["accounts"] for n in a["notes"]]
    assert any(f"holds key {h}, not the default key {y}" in n for n in notes), notes
    steps = [s for a in doc["accounts"] for s in a["steps"]]
    assert not [s for s in steps if s["kind"] == "delete_api_key" and s["params"]["key"] == y]

    applied = _apply(sandbox, m, "--prune-api-keys", "--auto-approve")
    assert applied.rc == 0, str(applied)
    stored = read_secret(sandbox, default_path)
    assert stored and stored[0]["key"] == y
    assert listed_keys(sandbox, acct.address, stored[0]) == {y}  # the official creds work
    assert provision(sandbox, "plan", "-f", str(m.path), "--detailed-exitcode").rc == 0


# -- 3. confirmations are honoured ----------------------------------------------------------------


def _journaled_deposit(sandbox: SandboxInfo, state_path: str) -> dict[str, Any] | None:
    for entry in journal_entries(sandbox, state_path).values():
        if entry.get("intent") == "deposit" and entry.get("tx_hash"):
            return entry
    return None


def test_a_deposit_counts_only_once_confirmed_and_stays_pending_until_then(
    sandbox_env: SandboxInfo, tmp_path: Path
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "unconfirmed", "deposit": "1"}])
    m = write_manifest(tmp_path, [acct], network=_network(confirmations=24))
    killed = _apply(sandbox, m, "--auto-approve", failpoint="after_receipt:deposit")
    assert killed.rc == SIGKILL, str(killed)
    assert _journaled_deposit(sandbox, m.state_path) is not None

    pending = provision(sandbox, "plan", "-f", str(m.path), "--detailed-exitcode")
    assert pending.rc == 2, str(pending)
    assert "pending" in pending.out and "confirmation" in pending.out, pending.out
    assert _journaled_deposit(sandbox, m.state_path) is not None

    settled = _apply(sandbox, m, "--auto-approve")
    assert settled.rc == 0, str(settled)
    assert journal_entries(sandbox, m.state_path) == {}
    assert provision(sandbox, "plan", "-f", str(m.path), "--detailed-exitcode").rc == 0
    assert _total(sandbox, m, "unconfirmed") == to_base_units(Decimal(1))


def test_a_reorg_that_removes_a_mined_deposit_resends_the_same_signed_bytes(
    sandbox_env: SandboxInfo, tmp_path: Path
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "reorg", "deposit": "3"}])
    # 40 blocks (10 s) to see the deposit mined and take it away, on a busy machine too
    m = write_manifest(tmp_path, [acct], network=_network(confirmations=40))
    seen: dict[str, Any] = {}

    def reorg_once_mined() -> None:
        entry = wait_until(lambda: _journaled_deposit(sandbox, m.state_path), 120, "a deposit")
        seen["hash"] = tx_hash = entry["tx_hash"]
        receipt = wait_until(
            lambda: rpc(sandbox, "eth_getTransactionReceipt", [tx_hash]), 60, "its receipt"
        )
        block = int(receipt["blockNumber"], 16)
        wait_until(
            lambda: (
                int(rpc(sandbox, "eth_blockNumber", []), 16) > block
                or _journaled_deposit(sandbox, m.state_path) is None
            ),
            30,
            "a block on top",
        )
        head = int(rpc(sandbox, "eth_blockNumber", []), 16)
        rpc(sandbox, "anvil_reorg", [head - block + 1, []])
        seen["reorged"] = True

    watcher = threading.Thread(target=reorg_once_mined, daemon=True)
    watcher.start()
    first = _apply(sandbox, m, "--auto-approve")
    watcher.join(timeout=120)
    assert seen.get("reorged"), str(first)
    again = _apply(sandbox, m, "--auto-approve")
    assert again.rc == 0, str(again)
    assert "rebroadcasting journaled deposit" in first.err + again.err, str(first) + str(again)
    logs = deposit_logs(sandbox, stark_public(sandbox, m.stark_path("reorg")))
    assert [log["transactionHash"] for log in logs] == [seen["hash"]]
    assert _total(sandbox, m, "reorg") == to_base_units(Decimal(3))
    assert journal_entries(sandbox, m.state_path) == {}


# -- 4. every pending nonce of a sender is explained by the journal -------------------------------


def test_an_unknown_pending_nonce_stops_the_account(
    sandbox_env: SandboxInfo, tmp_path: Path
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "stranger", "deposit": "1"}])
    m = write_manifest(tmp_path, [acct])

    def pool_holds_one(call: dict[str, Any]) -> dict[str, Any] | None:
        """A relay whose pool holds a transaction of this sender that no journal explains
        (another desk's tool sent it through another node); it takes nothing new."""
        method, params = call.get("method"), call.get("params") or []
        mine = bool(params) and str(params[0]).lower() == acct.address.lower()
        if method == "eth_getTransactionCount" and mine and params[1] == "pending":
            latest = int(rpc(sandbox, "eth_getTransactionCount", [params[0], "latest"]), 16)
            return {"jsonrpc": "2.0", "id": call.get("id"), "result": hex(latest + 1)}
        if method == "eth_sendRawTransaction":
            error = {"code": -32000, "message": "relay is not taking transactions"}
            return {"jsonrpc": "2.0", "id": call.get("id"), "error": error}
        return None

    with forwarder(sandbox.rpc_url, rpc_hook=pool_holds_one) as relay:
        res = _apply(sandbox, m, "--auto-approve", env={"ETH_RPC_URL": relay.url})
    assert res.rc == 1, str(res)
    assert "stranger" in res.err and "nonce 0" in res.err and "journal" in res.err, res.err
    assert "relay is not taking transactions" not in res.err  # nothing was even built
    assert nonces(sandbox, [acct.address])[acct.address] == 0


def test_renaming_an_account_cannot_hide_its_journaled_deposit(
    sandbox_env: SandboxInfo, tmp_path: Path
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "before-rename", "deposit": "2"}])
    m = write_manifest(tmp_path, [acct])
    killed = _apply(sandbox, m, "--auto-approve", failpoint="after_journal_record:deposit")
    assert killed.rc == SIGKILL, str(killed)
    journaled = _journaled_deposit(sandbox, m.state_path)
    assert journaled is not None
    acct.name = "after-rename"
    m.rewrite()
    rerun = _apply(sandbox, m, "--auto-approve")
    assert rerun.rc == 0, str(rerun)
    assert "rebroadcasting journaled deposit" in rerun.err, rerun.err
    logs = deposit_logs(sandbox, stark_public(sandbox, m.stark_path("after-rename")))
    assert [log["transactionHash"] for log in logs] == [journaled["tx_hash"]]
    assert journal_entries(sandbox, m.state_path) == {}


# -- 5. remote signers are verified, not trusted ----------------------------------------------


def _remote_manifest(tmp_path: Path, acct: TestAccount, url: str, timeout: float = 30) -> Manifest:
    acct.signer = False
    m = write_manifest(tmp_path, [acct])
    _edit(m, {"signer": {"remote": {"url": url, "timeout_seconds": timeout}}})
    return m


def _bigger_deposit(tx: dict[str, Any]) -> dict[str, Any]:
    data = str(tx.get("data", ""))
    if not data.startswith(DEPOSIT_SELECTOR):
        return tx
    amount = int(data[-64:], 16)
    return dict(tx, data=data[:-64] + f"{amount * 1000:064x}")


@pytest.mark.parametrize(
    "send_only", [False, True], ids=["eth_signTransaction", "eth_sendTransaction"]
)
def test_a_remote_signer_that_changes_the_deposit_is_caught(
    sandbox_env: SandboxInfo, tmp_path: Path, send_only: bool
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "liar", "deposit": "1"}])
    signer = StandInSigner(
        sandbox, acct.private_key, send_only=send_only, on_transaction=_bigger_deposit
    )
    try:
        m = _remote_manifest(tmp_path, acct, signer.url)
        first = _apply(sandbox, m, "--auto-approve")
        assert first.rc == 1, str(first)
        assert "liar: FAILED at liar/deposit" in first.err, first.err
        field = "input" if send_only else "data"
        assert f"{field} differs" in first.err, first.err
        if send_only:  # it went out: the account waits for a person, it never pays again
            again = _apply(sandbox, m, "--auto-approve")
            assert again.rc == 1, str(again)
            assert "provision journal resolve" in again.err, again.err
            assert len(signer.sent) == 3  # register, approve, the altered deposit: no other
        else:  # refused before broadcast: register and approve only
            assert nonces(sandbox, [acct.address])[acct.address] == 2
        assert deposit_logs(sandbox, stark_public(sandbox, m.stark_path("liar"))) == []
    finally:
        signer.close()


def test_a_signer_that_approves_after_the_timeout_never_makes_a_second_deposit(
    sandbox_env: SandboxInfo, tmp_path: Path
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "late", "deposit": "1.5"}])
    signer = StandInSigner(sandbox, acct.private_key, send_only=True)
    try:
        m = _remote_manifest(tmp_path, acct, signer.url, timeout=2)

        def late_deposit(tx: dict[str, Any]) -> dict[str, Any]:
            if str(tx.get("data", "")).startswith(DEPOSIT_SELECTOR) and not signer.late_sends:
                signer.delay_next_send = 12.0  # the next run starts well before
            return tx

        signer.on_transaction = late_deposit
        first = _apply(sandbox, m, "--auto-approve")
        assert first.rc == 1 and "did not answer eth_sendTransaction" in first.err, str(first)
        again = _apply(sandbox, m, "--auto-approve")
        assert again.rc == 1, str(again)
        assert "awaiting the signer" in again.err and "provision journal resolve" in again.err
        for thread in signer.late_sends:  # the engine approves after all
            thread.join(timeout=30)
        wait_until(lambda: rpc(sandbox, "eth_getTransactionReceipt", [signer.sent[-1]]), 30, "it")
        settled = _apply(sandbox, m, "--auto-approve")
        assert settled.rc == 0, str(settled)
        assert _total(sandbox, m, "late") == to_base_units(Decimal("1.5"))
        assert len(deposit_logs(sandbox, stark_public(sandbox, m.stark_path("late")))) == 1
    finally:
        signer.close()


# -- 6. ceilings hold where money moves ---------------------------------------------------------


def test_a_journaled_deposit_is_not_rebroadcast_over_the_ceiling(
    sandbox_env: SandboxInfo, tmp_path: Path
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "rebroadcast", "deposit": "3"}])
    m = write_manifest(tmp_path, [acct])
    killed = _apply(sandbox, m, "--auto-approve", failpoint="after_journal_record:deposit")
    assert killed.rc == SIGKILL, str(killed)
    capped = _apply(sandbox, m, "--auto-approve", "--max-deposit", "1")
    assert capped.rc == 1, str(capped)
    assert "--max-deposit" in capped.err and "3 USDC" in capped.err, capped.err
    assert _total(sandbox, m, "rebroadcast") == 0
    assert _journaled_deposit(sandbox, m.state_path) is not None  # kept for a run allowed to
    allowed = _apply(sandbox, m, "--auto-approve", "--max-deposit", "3")
    assert allowed.rc == 0, str(allowed)
    assert _total(sandbox, m, "rebroadcast") == to_base_units(Decimal(3))


def test_a_fee_over_the_network_ceiling_blocks_the_transaction(
    sandbox_env: SandboxInfo, tmp_path: Path
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "feecap", "deposit": "1"}])
    m = write_manifest(tmp_path, [acct], network=_network(max_fee_gwei="0.000000001"))
    res = _apply(sandbox, m, "--auto-approve")
    assert res.rc == 1, str(res)
    assert "feecap: FAILED at feecap/register" in res.err, res.err
    assert "over the network's max_fee_gwei of 0.000000001 gwei" in res.err, res.err
    assert read_secret(sandbox, m.stark_path("feecap")) is not None  # the steps before ran
    assert nonces(sandbox, [acct.address])[acct.address] == 0


# -- 7. the deposit step reads the journal before the chain's events ------------------------------


def test_the_deposit_step_reads_the_journal_before_the_deposit_events(
    sandbox_env: SandboxInfo, tmp_path: Path
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "order", "deposit": "1"}])
    m = write_manifest(tmp_path, [acct])
    recording = Recording()
    with (
        forwarder(sandbox.vault_addr, name="vault", recording=recording) as vault,
        forwarder(sandbox.rpc_url, name="rpc", recording=recording) as node,
    ):
        res = _apply(
            sandbox, m, "--auto-approve", env={"VAULT_ADDR": vault.url, "ETH_RPC_URL": node.url}
        )
    assert res.rc == 0, str(res)
    events = recording.events
    sends = [i for i, e in enumerate(events) if b"eth_sendRawTransaction" in e.body]
    before = events[: sends[-1]]  # up to the deposit's broadcast, the run's last
    logs = max(i for i, e in enumerate(before) if b"eth_getLogs" in e.body)
    journal = max(
        i
        for i, e in enumerate(before)
        if e.via == "vault"
        and "/journal" in e.path
        and (e.method == "LIST" or "list=true" in e.path)
    )
    assert journal < logs, "the deposit step read the chain's events before the journal"


# -- 8. orphans: only keys the journal says this tool created ------------------------------------


def test_a_key_made_by_another_tool_is_reported_and_left_alone(
    sandbox_env: SandboxInfo, tmp_path: Path
) -> None:
    from dydx3 import Client

    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "theirs"}])
    m = write_manifest(tmp_path, [acct])
    assert _apply(sandbox, m, "--auto-approve").rc == 0
    acct.api_keys = ["default", "quoter"]
    m.rewrite()
    killed = _apply(sandbox, m, "--auto-approve", failpoint="after_intent:api_key")
    assert killed.rc == SIGKILL, str(killed)
    desk = Client(
        host=sandbox.api_url, network_id=SEPOLIA.chain_id, eth_private_key=acct.private_key
    )
    theirs = desk.eth_private.create_api_key().data["apiKey"]["key"]

    rerun = _apply(sandbox, m, "--auto-approve")
    assert rerun.rc == 0, str(rerun)
    said = rerun.out + rerun.err
    assert theirs in said and "left alone" in said, said
    default = read_secret(sandbox, m.api_path("theirs", "default"))
    quoter = read_secret(sandbox, m.api_path("theirs", "quoter"))
    assert default and quoter
    assert listed_keys(sandbox, acct.address, default[0]) == {
        default[0]["key"],
        quoter[0]["key"],
        theirs,
    }
    assert journal_entries(sandbox, m.state_path) == {}


# -- 9. mainnet: always confirmed, never without a ceiling ---------------------------------------


def _mainnet_manifest(
    tmp_path: Path, acct: TestAccount, rpc_url: str, ceiling: bool, prefix: str | None = None
) -> Manifest:
    network = {
        "name": "mainnet-lookalike",
        "chain_id": 1,
        "api_url": "${DYDX_API_URL}",
        "rpc_url": rpc_url,
        "exchange_contract": SEPOLIA.exchange_contract,
        "usdc_contract": SEPOLIA.usdc_contract,
        "collateral_asset_id": hex(SEPOLIA.collateral_asset_id),
    }
    return write_manifest(
        tmp_path, [acct], network=network, max_deposit="5" if ceiling else None, prefix=prefix
    )


def _on_a_terminal(sandbox: SandboxInfo, *args: str, answer: bytes) -> tuple[int, str]:
    """``provision ARGS`` with a terminal on stdin that types ``answer``."""
    env = dict(os.environ, **sandbox.env(), NO_COLOR="1")
    env.pop("PROVISION_FAILPOINT", None)
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [PROVISION, *args],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
        os.write(master, answer)
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    return proc.returncode, out.decode(errors="replace")


def test_mainnet_needs_its_confirmation_and_a_ceiling_on_every_apply(
    sandbox_env: SandboxInfo, tmp_path: Path
) -> None:
    sandbox = sandbox_env
    [acct] = make_accounts(sandbox, [{"name": "mainnet", "deposit": "1"}])

    def says_mainnet(call: dict[str, Any]) -> dict[str, Any] | None:
        if call.get("method") in ("eth_chainId", "net_version"):
            value = "0x1" if call["method"] == "eth_chainId" else "1"
            return {"jsonrpc": "2.0", "id": call.get("id"), "result": value}
        return None

    with forwarder(sandbox.rpc_url, rpc_hook=says_mainnet) as node:
        m = _mainnet_manifest(tmp_path, acct, node.url, ceiling=True)
        f = str(m.path)
        saved = tmp_path / "mainnet.plan"
        assert provision(sandbox, "plan", "-f", f, "--out", str(saved)).rc == 0
        before = (emulator_stats(sandbox)["writes"], tree_versions(sandbox, m.prefix))

        for args in (("--auto-approve",), (str(saved),)):
            rc, out = _on_a_terminal(sandbox, "apply", "-f", f, *args, answer=b"yes\n")
            assert rc == 1, out
            assert "mainnet" in out and "nothing was done" in out, out
        unattended = provision(sandbox, "apply", "-f", f, str(saved))
        assert unattended.rc == 1 and "--confirm-mainnet" in unattended.err, str(unattended)

        m = _mainnet_manifest(tmp_path, acct, node.url, ceiling=False, prefix=m.prefix)
        uncapped = provision(sandbox, "apply", "-f", f, "--auto-approve", "--confirm-mainnet")
        assert uncapped.rc == 1, str(uncapped)
        assert "deposit ceiling" in uncapped.err and "max_deposit" in uncapped.err, uncapped.err
    assert (emulator_stats(sandbox)["writes"], tree_versions(sandbox, m.prefix)) == before
    assert nonces(sandbox, [acct.address])[acct.address] == 0
