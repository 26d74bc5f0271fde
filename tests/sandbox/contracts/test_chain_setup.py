"""install_sandbox_contracts: idempotent, survives a --state restore, refuses the wrong chain."""

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.contracts import Send, random_stark_key, rpc, start_anvil, stop_anvil
from web3 import Web3
from web3.contract import Contract

from provisioner.sandbox.chain_setup import (
    EXCHANGE_ADDRESS,
    MULTICALL3_ADDRESS,
    PLACEMENTS,
    USDC_ADDRESS,
    ChainSetupError,
    connect,
    deployed_bytecode,
    exchange_contract,
    install_sandbox_contracts,
    usdc_contract,
)
from provisioner.sandbox.dev_accounts import (
    DEV_ACCOUNTS,
    SANDBOX_OPERATOR_ADDRESS,
    sign_registration,
)

pytestmark = pytest.mark.sandbox

HOLDER = DEV_ACCOUNTS[6]
MILLION_USDC = 1_000_000 * 10**6


@pytest.fixture
def scratch_anvil(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Starts throwaway anvils (extra CLI args allowed); all are stopped after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def _start(*extra: str, chain_id: int = 11155111) -> str:
        log_file = tmp_path / f"anvil-{len(procs)}.log"
        proc, rpc_url = start_anvil(log_file, *extra, chain_id=chain_id)
        procs.append(proc)
        return rpc_url

    yield _start
    for proc in procs:
        stop_anvil(proc)


def _snapshot(w3: Web3) -> dict[str, object]:
    usdc, exchange = usdc_contract(w3), exchange_contract(w3)
    return {
        "code": [w3.eth.get_code(address).hex() for _, address in PLACEMENTS],
        "operator_nonce": w3.eth.get_transaction_count(SANDBOX_OPERATOR_ADDRESS),
        "balances": [usdc.functions.balanceOf(a.address).call() for a in DEV_ACCOUNTS],
        "total_supply": usdc.functions.totalSupply().call(),
        "config": exchange.functions.standInConfig().call(),
        "admin": exchange.functions.isUserAdmin(SANDBOX_OPERATOR_ADDRESS).call(),
    }


def _register_and_spend(w3: Web3, send: Send) -> int:
    """Changes made after install that a re-install must keep: a registration and a transfer."""
    exchange, usdc = exchange_contract(w3), usdc_contract(w3)
    stark_key = random_stark_key()
    signature = sign_registration(HOLDER.address, stark_key)
    send(exchange.functions.registerUser(HOLDER.address, stark_key, signature), HOLDER.address)
    send(usdc.functions.transfer(DEV_ACCOUNTS[0].address, 1_500_000), HOLDER.address)
    return stark_key


def test_installed_state(w3: Web3, exchange: Contract) -> None:
    for name, address in PLACEMENTS:
        assert w3.eth.get_code(address).hex() == deployed_bytecode(name)
    assert [address for _, address in PLACEMENTS] == [
        EXCHANGE_ADDRESS,
        USDC_ADDRESS,
        MULTICALL3_ADDRESS,
    ]
    initialized, governor, token, asset_type = exchange.functions.standInConfig().call()
    assert (initialized, governor, token) == (True, SANDBOX_OPERATOR_ADDRESS, USDC_ADDRESS)
    assert asset_type == exchange.functions.getSystemAssetType().call()


def test_install_twice_is_harmless(chain_rpc_url: str, w3: Web3, send: Send) -> None:
    stark_key = _register_and_spend(w3, send)
    before = _snapshot(w3)
    block = w3.eth.block_number

    install_sandbox_contracts(chain_rpc_url)
    install_sandbox_contracts(chain_rpc_url)

    assert _snapshot(w3) == before
    assert w3.eth.block_number == block  # nothing was sent
    assert exchange_contract(w3).functions.getEthKey(stark_key).call() == HOLDER.address


def test_install_survives_a_state_restore_with_interval_mining(
    scratch_anvil: Callable[..., str], tmp_path: Path
) -> None:
    """As `provision sandbox up` runs it: --block-time and --state, then again after a restart."""
    state = tmp_path / "anvil-state.json"
    mining = ("--block-time", "0.2", "--state", str(state))
    proc, first = start_anvil(tmp_path / "first.log", *mining)
    try:
        before = _install_and_spend(first)
    finally:
        stop_anvil(proc)  # anvil writes the --state file on exit
    assert state.stat().st_size > 0

    second = scratch_anvil(*mining)
    install_sandbox_contracts(second)
    assert _snapshot(connect(second)) == before


def _install_and_spend(rpc_url: str) -> dict[str, object]:
    install_sandbox_contracts(rpc_url, usdc_per_account=5 * 10**6)
    w3 = connect(rpc_url)
    usdc = usdc_contract(w3)
    assert usdc.functions.balanceOf(HOLDER.address).call() == 5 * 10**6
    tx = usdc.functions.transfer(DEV_ACCOUNTS[0].address, 2 * 10**6).transact(
        {"from": HOLDER.address}
    )
    w3.eth.wait_for_transaction_receipt(tx, timeout=10)
    return _snapshot(w3)


def test_install_completes_an_interrupted_install(scratch_anvil: Callable[..., str]) -> None:
    rpc_url = scratch_anvil()
    rpc(rpc_url, "anvil_setCode", EXCHANGE_ADDRESS, deployed_bytecode("StarkPerpetualStandIn"))
    rpc(rpc_url, "anvil_setCode", USDC_ADDRESS, deployed_bytecode("UsdcStandIn"))
    w3 = connect(rpc_url)
    usdc_contract(w3).functions.setBalance(HOLDER.address, 7).transact({"from": HOLDER.address})

    install_sandbox_contracts(rpc_url)

    snapshot = _snapshot(w3)
    assert snapshot["balances"] == [MILLION_USDC] * len(DEV_ACCOUNTS)
    assert snapshot["total_supply"] == MILLION_USDC * len(DEV_ACCOUNTS)
    assert snapshot["admin"] is True


def test_refuses_a_chain_that_is_not_sepolia(scratch_anvil: Callable[..., str]) -> None:
    rpc_url = scratch_anvil(chain_id=31337)
    with pytest.raises(ChainSetupError, match="chain id 31337.*--chain-id 11155111"):
        install_sandbox_contracts(rpc_url)
    assert rpc(rpc_url, "eth_getCode", EXCHANGE_ADDRESS, "latest") == "0x"


def test_refuses_a_foreign_contract_at_the_exchange_address(
    scratch_anvil: Callable[..., str],
) -> None:
    rpc_url = scratch_anvil()
    rpc(rpc_url, "anvil_setCode", EXCHANGE_ADDRESS, deployed_bytecode("UsdcStandIn"))
    with pytest.raises(ChainSetupError, match="not the sandbox stand-in"):
        install_sandbox_contracts(rpc_url)


def test_unreachable_node_is_a_clear_error() -> None:
    with pytest.raises(ChainSetupError, match="cannot reach"):
        install_sandbox_contracts("http://127.0.0.1:9")
