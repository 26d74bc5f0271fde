"""The benchmark fleet is funded by storage writes (benchmarks/fleet.py): the balances land
where the USDC stand-in reads them, and a deposit of them goes through the real contract."""

from __future__ import annotations

import pytest
from eth_account import Account
from support.apply_runs import chain_client

from benchmarks.fleet import ETH_WEI, fund
from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox


def test_funding_by_storage_gives_each_wallet_its_usdc_and_eth(sandbox: SandboxInfo) -> None:
    wallets = [Account.create().address for _ in range(3)]
    fund(sandbox.rpc_url, wallets, usdc=7_250_000)
    with chain_client(sandbox) as chain:
        seen = chain.read_accounts([(a, None) for a in wallets])
    for address in wallets:
        assert seen[address].usdc_balance == 7_250_000
        assert seen[address].eth_balance_wei == ETH_WEI
        assert seen[address].usdc_allowance == 0
