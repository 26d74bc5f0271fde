"""A real anvil (chain id 11155111) with the sandbox contracts installed, once per session."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

from collections.abc import Iterator

import pytest
from support.contracts import RevertReason, Send, start_anvil, stop_anvil
from web3 import Web3
from web3.contract import Contract, ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from provisioner.sandbox.chain_setup import (
    connect,
    exchange_contract,
    install_sandbox_contracts,
    usdc_contract,
)


@pytest.fixture(scope="session")
def chain_rpc_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, rpc_url = start_anvil(tmp_path_factory.mktemp("anvil") / "anvil.log")
    try:
        install_sandbox_contracts(rpc_url)
        yield rpc_url
    finally:
        stop_anvil(proc)


@pytest.fixture(scope="session")
def w3(chain_rpc_url: str) -> Web3:
    return connect(chain_rpc_url)


@pytest.fixture(scope="session")
def exchange(w3: Web3) -> Contract:
    return exchange_contract(w3)


@pytest.fixture(scope="session")
def usdc(w3: Web3) -> Contract:
    return usdc_contract(w3)


@pytest.fixture(scope="session")
def send(w3: Web3) -> Send:
    """Sends a call from an anvil-unlocked dev account and returns its successful receipt."""

    def _send(call: ContractFunction, sender: str) -> TxReceipt:
        tx_hash = call.transact({"from": sender})
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
        assert receipt["status"] == 1, receipt
        return receipt

    return _send


@pytest.fixture(scope="session")
def revert_reason() -> RevertReason:
    """The Error(string) reason of a call that must revert (eth_call from `sender`)."""

    def _reason(call: ContractFunction, sender: str) -> str:
        with pytest.raises(ContractLogicError) as caught:
            call.call({"from": sender})
        return str(caught.value).removeprefix("execution reverted: ")

    return _reason
