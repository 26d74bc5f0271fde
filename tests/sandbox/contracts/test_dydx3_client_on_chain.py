"""The unmodified official client (dydx-v3-python 2.1.0) against the stand-ins on anvil."""

import contextlib

import pytest
from dydx3 import Client
from dydx3.errors import TransactionReverted
from web3.contract import Contract

from provisioner.networks import SEPOLIA
from provisioner.sandbox.chain_setup import EXCHANGE_ADDRESS, USDC_ADDRESS
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS, sign_registration

pytestmark = pytest.mark.sandbox

ACCOUNT = DEV_ACCOUNTS[5]  # only this test module sends from it (the client caches nonces)
POSITION_ID = 31415


def _client(rpc_url: str) -> Client:
    """A client with its derived STARK key, the way an onboarding script sets it up."""
    client = Client(
        host="http://127.0.0.1:9",  # the API is not used here
        network_id=SEPOLIA.chain_id,
        web3_provider=rpc_url,
        eth_private_key=ACCOUNT.private_key,
    )
    keys = client.onboarding.derive_stark_key()
    # Client computes the public key only in __init__; set all three before `client.eth` exists.
    client.stark_private_key = keys["private_key"]
    client.stark_public_key = keys["public_key"]
    client.stark_public_key_y_coordinate = keys["public_key_y_coordinate"]
    return client


@pytest.fixture(scope="module")
def client(chain_rpc_url: str) -> Client:
    return _client(chain_rpc_url)


def test_client_sees_the_stand_ins_at_the_sepolia_addresses(client: Client, usdc: Contract) -> None:
    assert client.eth.get_exchange_contract().address == EXCHANGE_ADDRESS
    assert client.eth.get_token_contract("USDC", None).address == USDC_ADDRESS
    balance = client.eth.get_token_balance()
    assert isinstance(balance, int)
    assert balance == usdc.functions.balanceOf(ACCOUNT.address).call() > 0


def test_onboarding_on_chain_with_the_official_client(
    client: Client, exchange: Contract, usdc: Contract
) -> None:
    eth = client.eth
    stark_key = int(client.stark_public_key, 16)
    balance_before = eth.get_token_balance()

    eth.wait_for_tx(eth.set_token_max_allowance(eth.get_exchange_contract().address))
    assert eth.get_token_allowance(EXCHANGE_ADDRESS) == 2**256 - 1

    signature = sign_registration(ACCOUNT.address, stark_key)
    eth.wait_for_tx(eth.register_user(signature))
    assert exchange.functions.getEthKey(stark_key).call() == ACCOUNT.address

    deposit_hash = eth.deposit_to_exchange(POSITION_ID, "8.2")
    eth.wait_for_tx(deposit_hash)  # returns None; raises TransactionReverted on status 0
    receipt = client.web3.eth.get_transaction_receipt(deposit_hash)

    # dydx3 computes int(float("8.2") * 1e6) == 8199999: the event tells the truth.
    (event,) = exchange.events.LogDeposit().processReceipt(receipt)
    assert dict(event["args"]) == {
        "depositorEthKey": ACCOUNT.address,
        "starkKey": stark_key,
        "vaultId": POSITION_ID,
        "assetType": SEPOLIA.collateral_asset_id,
        "nonQuantizedAmount": 8_199_999,
        "quantizedAmount": 8_199_999,
    }
    assert eth.get_token_balance() == balance_before - 8_199_999
    assert eth.get_token_allowance(EXCHANGE_ADDRESS) == 2**256 - 1
    pending = exchange.functions.getQuantizedDepositBalance(
        stark_key, SEPOLIA.collateral_asset_id, POSITION_ID
    )
    assert pending.call() == 8_199_999
    assert usdc.functions.balanceOf(EXCHANGE_ADDRESS).call() >= 8_199_999


def test_client_sees_a_second_registration_revert(client: Client) -> None:
    """The client sends even when estimation fails; the revert shows in wait_for_tx."""
    stark_key = int(client.stark_public_key, 16)
    signature = sign_registration(ACCOUNT.address, stark_key)
    eth = client.eth
    with contextlib.suppress(TransactionReverted):  # registers it if the test above did not run
        eth.wait_for_tx(eth.register_user(signature))
    with pytest.raises(TransactionReverted):
        eth.wait_for_tx(eth.register_user(signature))
