"""The chain client tells whoever watches the run when it waits for a receipt, whose, and when
the wait is over (told again with an end already passed)."""

from __future__ import annotations

import pytest
from support.chain_client import RECEIPT_TIMEOUT_S

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)
from provisioner.clients.chain import ChainClient, ChainError
from provisioner.manifest.model import NetworkSpec
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS
from provisioner.signers.local import LocalKeySigner
from provisioner.waits import Wait


def test_a_receipt_wait_is_told_then_told_over(network: NetworkSpec) -> None:
    waits: list[Wait] = []
    unknown = "0x" + "cd" * 32
    with (
        ChainClient(network.rpc_url, network, on_wait=waits.append) as chain,
        pytest.raises(ChainError, match="no receipt"),
    ):
        chain.wait_for_receipt(unknown, 0.3)
    start, over = waits
    assert start.what == f"receipt of {unknown[:10]}..." and start.at_most
    assert start.subject == unknown  # not sent by this client: its sender is unknown
    assert over.until == 0.0 and over.subject == unknown


def test_the_wait_for_a_transaction_sent_here_names_its_sender(network: NetworkSpec) -> None:
    waits: list[Wait] = []
    payer = DEV_ACCOUNTS[9]
    with ChainClient(network.rpc_url, network, on_wait=waits.append) as chain:
        tx = chain.build_approve(payer.address, 1)
        tx_hash = chain.send_raw(LocalKeySigner(payer.private_key).sign_transaction(tx))
        chain.wait_for_receipt(tx_hash, RECEIPT_TIMEOUT_S)
    # anvil mines every 0.25 s: the first look right after the broadcast finds no receipt yet
    assert [w.subject for w in waits] == [payer.address.lower()] * 2
