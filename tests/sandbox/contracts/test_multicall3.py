"""The minimal Multicall3 at its canonical address: aggregate3 and getEthBalance."""

import pytest
from support.contracts import RevertReason
from web3 import Web3
from web3.contract import Contract

from provisioner.sandbox.chain_setup import MULTICALL3_ADDRESS, multicall3_contract
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def multicall(w3: Web3) -> Contract:
    return multicall3_contract(w3)


def test_aggregate3_batches_reads_and_reports_failures(
    multicall: Contract, usdc: Contract, exchange: Contract
) -> None:
    holder = DEV_ACCOUNTS[9].address
    calls = [
        (usdc.address, False, usdc.encodeABI(fn_name="balanceOf", args=[holder])),
        (usdc.address, False, usdc.encodeABI(fn_name="decimals")),
        (exchange.address, True, exchange.encodeABI(fn_name="getEthKey", args=[12345])),
    ]
    results = multicall.functions.aggregate3(calls).call()

    (ok_balance, balance), (ok_decimals, decimals), (ok_key, key_error) = results
    assert ok_balance and int.from_bytes(balance, "big") == usdc.functions.balanceOf(holder).call()
    assert ok_decimals and int.from_bytes(decimals, "big") == 6
    assert not ok_key and b"USER_UNREGISTERED" in key_error


def test_aggregate3_reverts_when_a_required_call_fails(
    multicall: Contract, exchange: Contract, revert_reason: RevertReason
) -> None:
    calls = [(exchange.address, False, exchange.encodeABI(fn_name="getEthKey", args=[12345]))]
    call = multicall.functions.aggregate3(calls)
    assert revert_reason(call, DEV_ACCOUNTS[0].address) == "Multicall3: call failed"


def test_get_eth_balance(multicall: Contract, w3: Web3) -> None:
    assert multicall.address == MULTICALL3_ADDRESS
    for address in (DEV_ACCOUNTS[9].address, "0x000000000000000000000000000000000000dEaD"):
        assert multicall.functions.getEthBalance(address).call() == w3.eth.get_balance(address)
