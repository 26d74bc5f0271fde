"""The StarkEx perpetual stand-in at Sepolia's exchange address: registerUser, getEthKey, deposit."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from eth_abi import decode_abi
from support.contracts import RevertReason, Send, random_stark_key, rpc
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from provisioner.networks import SEPOLIA
from provisioner.sandbox.chain_setup import EXCHANGE_ADDRESS, USDC_ADDRESS
from provisioner.sandbox.dev_accounts import (
    DEV_ACCOUNTS,
    SANDBOX_OPERATOR_ADDRESS,
    sign_registration,
)

pytestmark = pytest.mark.sandbox

SENDER = DEV_ACCOUNTS[1].address  # pays for registrations it sends on others' behalf
USER = DEV_ACCOUNTS[3].address
DEPOSITOR = DEV_ACCOUNTS[4].address
NOT_AN_ADMIN_KEY = DEV_ACCOUNTS[0].private_key
ASSET_TYPE = SEPOLIA.collateral_asset_id

# Reference test vector (starkex-l1.md §3): STARK private key 0x1234; +1 is off the curve.
REFERENCE_STARK_KEY = 0x26DA8D11938B76025862BE14FDB8B28438827F73E75E86F7BFA38B196951FA7
STARK_P = 0x800000000000011000000000000000000000000000000000000000000000001

LOG_USER_REGISTERED = "0xcab1cf17c190e4e2195a7b8f7b362023246fa774390432b4704ab6b29d56b07b"
LOG_DEPOSIT = "0x06724742ccc8c330a39a641ef02a0b419bd09248360680bb38159b0a8c2635d6"
ERROR_SELECTOR = bytes.fromhex("08c379a0")


def _words(data: str) -> list[int]:
    raw = bytes.fromhex(data[2:])
    return [int.from_bytes(raw[i : i + 32], "big") for i in range(0, len(raw), 32)]


def _only_log(receipt: TxReceipt, address: str) -> tuple[str, list[int]]:
    """topic0 and data words of the single log `address` emitted; asserts no indexed fields."""
    (log,) = [entry for entry in receipt["logs"] if entry["address"] == address]
    assert len(log["topics"]) == 1
    return log["topics"][0].hex(), _words(log["data"])


def _register(exchange: Contract, send: Send, eth_key: str, stark_key: int) -> TxReceipt:
    signature = sign_registration(eth_key, stark_key)
    return send(exchange.functions.registerUser(eth_key, stark_key, signature), SENDER)


def _addr(word: int) -> str:
    return Web3.toChecksumAddress(word.to_bytes(20, "big"))


def test_views(exchange: Contract) -> None:
    assert exchange.address == EXCHANGE_ADDRESS
    assert exchange.functions.getSystemAssetType().call() == ASSET_TYPE
    assert exchange.functions.getQuantum(ASSET_TYPE).call() == 1
    assert exchange.functions.isFrozen().call() is False
    assert exchange.functions.isUserAdmin(SANDBOX_OPERATOR_ADDRESS).call() is True
    assert exchange.functions.isUserAdmin(USER).call() is False
    assert exchange.functions.mainIsGovernor(SANDBOX_OPERATOR_ADDRESS).call() is True


def test_register_user_with_operator_signature(exchange: Contract, send: Send) -> None:
    stark_key = random_stark_key()
    receipt = _register(exchange, send, USER, stark_key)

    assert exchange.functions.getEthKey(stark_key).call() == USER
    topic, words = _only_log(receipt, EXCHANGE_ADDRESS)
    assert topic == LOG_USER_REGISTERED
    assert words == [int(USER, 16), stark_key, int(SENDER, 16)]
    (event,) = exchange.events.LogUserRegistered().processReceipt(receipt)
    assert dict(event["args"]) == {"ethKey": USER, "starkKey": stark_key, "sender": SENDER}


def test_reference_vector_key_registers(exchange: Contract, send: Send) -> None:
    receipt = _register(exchange, send, DEV_ACCOUNTS[1].address, REFERENCE_STARK_KEY)
    assert receipt["status"] == 1
    assert exchange.functions.getEthKey(REFERENCE_STARK_KEY).call() == DEV_ACCOUNTS[1].address


def test_one_address_may_own_many_keys(exchange: Contract, send: Send) -> None:
    keys = [random_stark_key(), random_stark_key()]
    for stark_key in keys:
        _register(exchange, send, USER, stark_key)
    assert [exchange.functions.getEthKey(k).call() for k in keys] == [USER, USER]


def test_signature_from_a_non_admin_is_invalid(
    exchange: Contract, revert_reason: RevertReason
) -> None:
    stark_key = random_stark_key()
    signature = sign_registration(USER, stark_key, admin_key=NOT_AN_ADMIN_KEY)
    call = exchange.functions.registerUser(USER, stark_key, signature)
    assert revert_reason(call, SENDER) == "INVALID_SIGNATURE"


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda sig: sig[:-2], id="64-bytes"),
        pytest.param(lambda sig: sig + "00", id="66-bytes"),
        pytest.param(lambda sig: sig[:-2] + f"{int(sig[-2:], 16) - 27:02x}", id="v-0-or-1"),
        pytest.param(
            lambda sig: sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:], id="r-flipped"
        ),
    ],
)
def test_malformed_signature_is_invalid(
    exchange: Contract, revert_reason: RevertReason, mangle: Callable[[str], str]
) -> None:
    stark_key = random_stark_key()
    signature = mangle(sign_registration(USER, stark_key))
    call = exchange.functions.registerUser(USER, stark_key, signature)
    assert revert_reason(call, SENDER) == "INVALID_SIGNATURE"


def test_signature_for_another_address_is_invalid(
    exchange: Contract, revert_reason: RevertReason
) -> None:
    stark_key = random_stark_key()
    signature = sign_registration(DEPOSITOR, stark_key)
    call = exchange.functions.registerUser(USER, stark_key, signature)
    assert revert_reason(call, SENDER) == "INVALID_SIGNATURE"


@pytest.mark.parametrize(
    "stark_key",
    [REFERENCE_STARK_KEY + 1, 0, STARK_P, 2**256 - 1],
    ids=["off-curve", "zero", "p", "max"],
)
def test_invalid_stark_key(exchange: Contract, revert_reason: RevertReason, stark_key: int) -> None:
    # An operator signature where one can be made: the key checks come before the signature's.
    signature = sign_registration(USER, stark_key) if stark_key else "0x" + "11" * 65
    call = exchange.functions.registerUser(USER, stark_key, signature)
    assert revert_reason(call, SENDER) == "INVALID_STARK_KEY"


def test_checks_run_in_the_reference_order(
    exchange: Contract, send: Send, revert_reason: RevertReason
) -> None:
    zero = "0x0000000000000000000000000000000000000000"
    bad = "0x" + "11" * 65
    # 1 (range) before 2 (eth address)
    assert (
        revert_reason(exchange.functions.registerUser(zero, 0, bad), SENDER) == "INVALID_STARK_KEY"
    )
    # 2 before 4 (curve) and 5 (signature)
    off_curve = REFERENCE_STARK_KEY + 1
    assert (
        revert_reason(exchange.functions.registerUser(zero, off_curve, bad), SENDER)
        == "INVALID_ETH_ADDRESS"
    )
    # 3 (taken) before 5
    stark_key = random_stark_key()
    _register(exchange, send, USER, stark_key)
    assert (
        revert_reason(exchange.functions.registerUser(USER, stark_key, bad), SENDER)
        == "STARK_KEY_UNAVAILABLE"
    )
    # 4 before 5
    assert (
        revert_reason(exchange.functions.registerUser(USER, off_curve, bad), SENDER)
        == "INVALID_STARK_KEY"
    )


def test_second_registration_is_unavailable(
    exchange: Contract, send: Send, revert_reason: RevertReason
) -> None:
    stark_key = random_stark_key()
    _register(exchange, send, USER, stark_key)
    again = exchange.functions.registerUser(
        DEPOSITOR, stark_key, sign_registration(DEPOSITOR, stark_key)
    )
    assert revert_reason(again, SENDER) == "STARK_KEY_UNAVAILABLE"
    assert exchange.functions.getEthKey(stark_key).call() == USER


def test_get_eth_key_of_unknown_key_reverts(
    exchange: Contract, revert_reason: RevertReason
) -> None:
    assert revert_reason(exchange.functions.getEthKey(random_stark_key()), SENDER) == (
        "USER_UNREGISTERED"
    )


def test_only_the_governor_adds_user_admins(
    exchange: Contract, revert_reason: RevertReason
) -> None:
    call = exchange.functions.registerUserAdmin(USER)
    assert revert_reason(call, USER) == "ONLY_GOVERNANCE"
    assert exchange.functions.registerUserAdmin(USER).estimateGas(
        {"from": SANDBOX_OPERATOR_ADDRESS}
    )


def test_initialize_runs_only_once(exchange: Contract, revert_reason: RevertReason) -> None:
    call = exchange.functions.initialize(USER, USDC_ADDRESS, ASSET_TYPE)
    assert revert_reason(call, USER) == "ALREADY_INITIALIZED"


def test_deposit_moves_tokens_and_logs(exchange: Contract, usdc: Contract, send: Send) -> None:
    stark_key = random_stark_key()
    _register(exchange, send, DEPOSITOR, stark_key)
    send(usdc.functions.approve(EXCHANGE_ADDRESS, 2**256 - 1), DEPOSITOR)
    user_before = usdc.functions.balanceOf(DEPOSITOR).call()
    exchange_before = usdc.functions.balanceOf(EXCHANGE_ADDRESS).call()
    vault_id = 2**64 - 1

    receipt = send(
        exchange.functions.deposit(stark_key, ASSET_TYPE, vault_id, 8_199_999), DEPOSITOR
    )

    topic, words = _only_log(receipt, EXCHANGE_ADDRESS)
    assert topic == LOG_DEPOSIT
    assert words == [int(DEPOSITOR, 16), stark_key, vault_id, ASSET_TYPE, 8_199_999, 8_199_999]
    (event,) = exchange.events.LogDeposit().processReceipt(receipt)
    assert _addr(words[0]) == event["args"]["depositorEthKey"] == DEPOSITOR
    assert usdc.functions.balanceOf(DEPOSITOR).call() == user_before - 8_199_999
    assert usdc.functions.balanceOf(EXCHANGE_ADDRESS).call() == exchange_before + 8_199_999
    pending = exchange.functions.getQuantizedDepositBalance(stark_key, ASSET_TYPE, vault_id)
    assert pending.call() == 8_199_999

    send(exchange.functions.deposit(stark_key, ASSET_TYPE, vault_id, 1), DEPOSITOR)
    send(exchange.functions.deposit(stark_key, ASSET_TYPE, vault_id, 0), DEPOSITOR)
    assert pending.call() == 8_200_000
    assert exchange.functions.getDepositBalance(stark_key, ASSET_TYPE, vault_id).call() == 8_200_000


def test_anyone_may_deposit_to_a_registered_key(
    exchange: Contract, usdc: Contract, send: Send
) -> None:
    stark_key = random_stark_key()
    _register(exchange, send, USER, stark_key)
    send(usdc.functions.approve(EXCHANGE_ADDRESS, 10), DEPOSITOR)
    receipt = send(exchange.functions.deposit(stark_key, ASSET_TYPE, 7, 10), DEPOSITOR)
    _, words = _only_log(receipt, EXCHANGE_ADDRESS)
    assert words[0] == int(DEPOSITOR, 16)


def test_deposit_to_unregistered_key_reverts(
    exchange: Contract, send: Send, revert_reason: RevertReason
) -> None:
    call = exchange.functions.deposit(random_stark_key(), ASSET_TYPE, 1, 1_000_000)
    assert revert_reason(call, DEPOSITOR) == "INVALID_STARK_KEY"


def test_deposit_of_other_asset_reverts(
    exchange: Contract, send: Send, revert_reason: RevertReason
) -> None:
    stark_key = random_stark_key()
    _register(exchange, send, DEPOSITOR, stark_key)
    for asset in (0, ASSET_TYPE + 1):
        call = exchange.functions.deposit(stark_key, asset, 1, 1)
        assert revert_reason(call, DEPOSITOR) == "ASSET_TYPE_NOT_REGISTERED"


def test_deposit_without_allowance_carries_the_token_revert_data(
    exchange: Contract, send: Send, chain_rpc_url: str
) -> None:
    """Like the real contract: require(success, string(returndata)) wraps the token's revert."""
    broke = DEV_ACCOUNTS[6].address
    stark_key = random_stark_key()
    _register(exchange, send, broke, stark_key)
    data = exchange.encodeABI(fn_name="deposit", args=[stark_key, ASSET_TYPE, 1, 5])
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "eth_call",
        "params": [{"from": broke, "to": EXCHANGE_ADDRESS, "data": data}, "latest"],
    }
    error = requests.post(chain_rpc_url, json=body, timeout=10).json()["error"]
    outer = bytes.fromhex(error["data"][2:])
    assert outer[:4] == ERROR_SELECTOR
    (inner,) = decode_abi(["bytes"], outer[4:])
    assert inner[:4] == ERROR_SELECTOR
    assert decode_abi(["string"], inner[4:]) == ("ERC20: transfer amount exceeds allowance",)
    assert rpc(chain_rpc_url, "eth_blockNumber")  # the node is still fine
