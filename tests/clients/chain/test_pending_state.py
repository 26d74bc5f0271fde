"""Simulated on the pending state, refreshed once for many (issue #21), on the sandbox's anvil."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import secrets
import threading

import pytest

from support.apply_runs import fresh_account
from support.chain_client import RECEIPT_TIMEOUT_S, random_stark_key

from provisioner.clients.chain import ChainClient
from provisioner.manifest.model import NetworkSpec
from provisioner.sandbox.control import SandboxInfo
from provisioner.sandbox.dev_accounts import sign_registration
from provisioner.signers.local import LocalKeySigner


def test_register_approve_and_deposit_are_built_back_to_back_on_the_pending_state(
    sandbox: SandboxInfo, network: NetworkSpec, chain: ChainClient
) -> None:
    """Nothing is mined between them: the approve's allowance and the registration exist only
    in the node's pool when the deposit is simulated, and the estimate passes all the same."""
    address, key = fresh_account(sandbox)
    signer = LocalKeySigner(key)
    stark_key = random_stark_key()
    sent = []
    for tx in (
        chain.build_register(address, address, stark_key, sign_registration(address, stark_key)),
        chain.build_approve(address, 4_000_000),
    ):
        sent.append((tx["nonce"], chain.send_raw(signer.sign_transaction(tx))))
    latest = chain.read_accounts([(address, stark_key)])[address]
    unmined = chain.receipt(sent[0][1]) is None
    deposit = chain.build_deposit(address, stark_key, secrets.randbelow(2**40) + 1, 4_000_000)
    if unmined:  # the usual case on 0.25 s blocks; else the estimate proved nothing new
        assert latest.usdc_allowance == 0 and latest.stark_key_owner is None
    sent.append((deposit["nonce"], chain.send_raw(signer.sign_transaction(deposit))))
    assert [nonce for nonce, _ in sent] == [0, 1, 2]
    for _, tx_hash in sent:
        assert chain.wait_for_receipt(tx_hash, RECEIPT_TIMEOUT_S).status == 1


def test_refreshes_asked_at_once_share_a_scan(network: NetworkSpec) -> None:
    """Each caller gets a scan that started after it asked (so it sees every event mined
    before), but callers at once share one: a few scans, not one each in turn."""
    callers = 16
    with ChainClient(network.rpc_url, network) as chain:
        chain.deposits()  # the first, full scan
        before = chain.stats.http_requests
        start = threading.Barrier(callers)
        results: list[dict[tuple[int, int], int]] = []

        def refresh() -> None:
            start.wait()
            results.append(chain.deposits(refresh=True))

        threads = [threading.Thread(target=refresh) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(results) == callers
        scans = chain.stats.http_requests - before  # a scan: eth_blockNumber, then the logs
        assert 2 <= scans <= 8, scans  # one after another, 16 scans would be 32 requests


def test_a_build_asks_the_senders_nonces_in_its_own_batch_and_a_refusal_uses_none(
    sandbox: SandboxInfo, chain: ChainClient
) -> None:
    """Apply's pending-nonce guard runs on counts the build asks beside its estimate (one round
    trip, not one more before it), and refuses before a nonce is handed out."""
    address, key = fresh_account(sandbox)
    signer = LocalKeySigner(key)
    seen: list[tuple[int, int]] = []
    before = chain.stats.http_requests
    first = chain.build_approve(address, 1, nonces=lambda *counts: seen.append(counts))
    assert chain.stats.http_requests == before + 1  # the build's batch, nonces included
    assert seen == [(0, 0)] and first["nonce"] == 0
    chain.send_raw(signer.sign_transaction(first))

    class Refused(Exception):
        pass

    def refuse(latest: int, pending: int) -> None:
        seen.append((latest, pending))
        raise Refused

    with pytest.raises(Refused):
        chain.build_approve(address, 2, nonces=refuse)
    assert seen[-1][1] >= 1  # the first approve, pending (or mined: then latest is 1 too)
    again = chain.build_approve(address, 2)
    assert again["nonce"] == 1  # the refused build used no nonce up
