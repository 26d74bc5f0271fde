"""The USDC stand-in at Sepolia's USDC address: metadata, funding, balance, allowance, transfer."""

from __future__ import annotations

import pytest
from support.contracts import RevertReason, Send
from web3 import Web3
from web3.contract import Contract

from provisioner.sandbox.chain_setup import USDC_ADDRESS
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS

pytestmark = pytest.mark.sandbox

MILLION_USDC = 1_000_000 * 10**6
OWNER = DEV_ACCOUNTS[1].address
SPENDER = DEV_ACCOUNTS[2].address
UNTOUCHED = [a.address for a in DEV_ACCOUNTS[7:]]  # no test in this folder moves their USDC
TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)").hex()
APPROVAL_TOPIC = Web3.keccak(text="Approval(address,address,uint256)").hex()


def _topic_address(address: str) -> str:
    return "0x" + "00" * 12 + address[2:].lower()


def test_metadata_is_usd_coin_with_6_decimals(usdc: Contract) -> None:
    assert usdc.address == USDC_ADDRESS
    assert usdc.functions.name().call() == "USD Coin"
    assert usdc.functions.symbol().call() == "USDC"
    assert usdc.functions.decimals().call() == 6


def test_dev_accounts_start_with_a_million_usdc(usdc: Contract) -> None:
    for address in UNTOUCHED:
        assert usdc.functions.balanceOf(address).call() == MILLION_USDC
    assert usdc.functions.totalSupply().call() >= len(DEV_ACCOUNTS) * MILLION_USDC


def test_unknown_address_has_zero_balance(usdc: Contract) -> None:
    assert usdc.functions.balanceOf("0x000000000000000000000000000000000000dEaD").call() == 0


def test_approve_sets_allowance_and_logs_indexed_approval(
    usdc: Contract, send: Send, revert_reason: RevertReason
) -> None:
    receipt = send(usdc.functions.approve(SPENDER, 1_234_567), OWNER)
    assert usdc.functions.allowance(OWNER, SPENDER).call() == 1_234_567

    (log,) = receipt["logs"]
    assert [t.hex() for t in log["topics"]] == [
        APPROVAL_TOPIC,
        _topic_address(OWNER),
        _topic_address(SPENDER),
    ]
    assert int(log["data"], 16) == 1_234_567

    before = usdc.functions.balanceOf(OWNER).call()
    send(usdc.functions.transferFrom(OWNER, SPENDER, 234_567), SPENDER)
    assert usdc.functions.allowance(OWNER, SPENDER).call() == 1_000_000
    assert usdc.functions.balanceOf(OWNER).call() == before - 234_567
    assert (
        revert_reason(usdc.functions.transferFrom(OWNER, SPENDER, 1_000_001), SPENDER)
        == "ERC20: transfer amount exceeds allowance"
    )


def test_max_allowance_is_not_consumed(usdc: Contract, send: Send) -> None:
    send(usdc.functions.approve(SPENDER, 2**256 - 1), OWNER)
    send(usdc.functions.transferFrom(OWNER, SPENDER, 5), SPENDER)
    assert usdc.functions.allowance(OWNER, SPENDER).call() == 2**256 - 1
    send(usdc.functions.approve(SPENDER, 0), OWNER)


def test_transfer_moves_tokens_and_logs_indexed_transfer(
    usdc: Contract, send: Send, revert_reason: RevertReason
) -> None:
    owner_before = usdc.functions.balanceOf(OWNER).call()
    spender_before = usdc.functions.balanceOf(SPENDER).call()

    receipt = send(usdc.functions.transfer(SPENDER, 8_200_000), OWNER)

    assert usdc.functions.balanceOf(OWNER).call() == owner_before - 8_200_000
    assert usdc.functions.balanceOf(SPENDER).call() == spender_before + 8_200_000
    (log,) = receipt["logs"]
    assert [t.hex() for t in log["topics"]] == [
        TRANSFER_TOPIC,
        _topic_address(OWNER),
        _topic_address(SPENDER),
    ]
    assert int(log["data"], 16) == 8_200_000
    assert (
        revert_reason(usdc.functions.transfer(SPENDER, owner_before), OWNER)
        == "ERC20: transfer amount exceeds balance"
    )


def test_transfer_returns_true(usdc: Contract) -> None:
    assert usdc.functions.transfer(SPENDER, 1).call({"from": OWNER}) is True


def test_set_balance_and_mint_adjust_total_supply(usdc: Contract, send: Send) -> None:
    holder = "0x00000000000000000000000000000000000A11cE"
    supply = usdc.functions.totalSupply().call()
    send(usdc.functions.setBalance(holder, 5_000_000), OWNER)
    send(usdc.functions.mint(holder, 1_000_000), OWNER)
    assert usdc.functions.balanceOf(holder).call() == 6_000_000
    send(usdc.functions.setBalance(holder, 0), OWNER)
    assert usdc.functions.balanceOf(holder).call() == 0
    assert usdc.functions.totalSupply().call() == supply
