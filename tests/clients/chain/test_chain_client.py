"""Reads, transactions and deposit events through ChainClient, on the sandbox's anvil."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import secrets
from decimal import Decimal

import pytest
from support.chain_client import RECEIPT_TIMEOUT_S, random_stark_key, sign_and_send

from provisioner.clients.chain import ChainClient, ChainError, NonceTaken, RevertError
from provisioner.clients.retry import RetryPolicy
from provisioner.manifest.model import NetworkSpec
from provisioner.money import to_base_units
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS, sign_registration
from provisioner.signers.local import LocalKeySigner

pytestmark = pytest.mark.sandbox

DEPOSITOR = DEV_ACCOUNTS[9]
PAYER = DEV_ACCOUNTS[8]  # sends registrations for others, as anyone may


@pytest.fixture(scope="module")
def registered(network: NetworkSpec) -> int:
    """A fresh STARK key registered on L1 to DEPOSITOR, the registration sent by PAYER."""
    stark_key = random_stark_key()
    with ChainClient(network.rpc_url, network) as chain:
        tx = chain.build_register(
            PAYER.address,
            DEPOSITOR.address,
            stark_key,
            sign_registration(DEPOSITOR.address, stark_key),
        )
        assert sign_and_send(chain, LocalKeySigner(PAYER.private_key), tx).status == 1
    return stark_key


def test_chain_id(chain: ChainClient) -> None:
    assert chain.chain_id() == 11155111
    assert chain.block_number() > 0


def test_reading_ten_accounts_is_one_http_request(chain: ChainClient, registered: int) -> None:
    items: list[tuple[str, int | None]] = [(a.address, None) for a in DEV_ACCOUNTS[:8]]
    items += [(PAYER.address, random_stark_key()), (DEPOSITOR.address.lower(), registered)]
    before = chain.stats.http_requests
    accounts = chain.read_accounts(items)
    assert chain.stats.http_requests - before == 1
    assert chain.stats.batch_requests == 1
    assert chain.stats.rpc_calls == 10 * 3 + 2
    assert set(accounts) == {a.address for a in DEV_ACCOUNTS}
    for state in accounts.values():
        assert state.usdc_balance > 0 and state.eth_balance_wei > 0
        assert isinstance(state.usdc_allowance, int)
    assert accounts[PAYER.address].stark_key_owner is None  # unknown key: USER_UNREGISTERED
    assert accounts[DEPOSITOR.address].stark_key_owner == DEPOSITOR.address
    assert accounts[DEV_ACCOUNTS[0].address].stark_key_owner is None  # not asked


def test_approve_and_deposit_exact_amount_and_rebroadcast(
    network: NetworkSpec, chain: ChainClient, registered: int
) -> None:
    signer = LocalKeySigner(DEPOSITOR.private_key)
    amount = to_base_units(Decimal("8.2"))
    assert amount == 8_200_000
    position_id = secrets.randbelow(2**40) + 1

    approve = chain.build_approve(DEPOSITOR.address, amount)
    assert approve["to"] == network.usdc_contract and approve["value"] == 0
    assert sign_and_send(chain, signer, approve).status == 1
    assert (
        chain.read_accounts([(DEPOSITOR.address, None)])[DEPOSITOR.address].usdc_allowance == amount
    )

    deposit = chain.build_deposit(DEPOSITOR.address, registered, position_id, amount)
    assert deposit["nonce"] == approve["nonce"] + 1
    assert deposit["chainId"] == 11155111 and "maxFeePerGas" in deposit
    raw = signer.sign_transaction(deposit)
    tx_hash = chain.send_raw(raw)
    assert chain.send_raw(raw) == tx_hash  # while pending: "already known"
    receipt = chain.wait_for_receipt(tx_hash, RECEIPT_TIMEOUT_S)
    assert (receipt.tx_hash, receipt.status) == (tx_hash, 1)
    assert chain.send_raw(raw) == tx_hash  # once mined: "nonce too low", same hash
    assert chain.stats.sent_transactions == 2

    assert chain.deposits()[(registered, position_id)] == 8_200_000
    with ChainClient(network.rpc_url, network) as fresh:  # nothing cached: one event only
        assert fresh.deposits()[(registered, position_id)] == 8_200_000
    assert chain.read_accounts([(DEPOSITOR.address, None)])[DEPOSITOR.address].usdc_allowance == 0


def test_deposits_are_scanned_once_per_client(chain: ChainClient) -> None:
    first = chain.deposits()
    before = chain.stats.http_requests
    assert chain.deposits() == first
    assert chain.stats.http_requests == before
    chain.deposits(refresh=True)
    assert chain.stats.http_requests > before


def test_a_reverting_estimate_is_an_error_and_uses_no_nonce(chain: ChainClient) -> None:
    with pytest.raises(RevertError) as caught:
        chain.build_deposit(DEPOSITOR.address, random_stark_key(), 1, 1)
    assert caught.value.reason == "INVALID_STARK_KEY"
    assert "deposit" in str(caught.value) and "INVALID_STARK_KEY" in str(caught.value)
    pending = chain.pending_count(DEPOSITOR.address)
    assert chain.nonces.next(DEPOSITOR.address) == pending


def test_amounts_must_be_exact_integers(chain: ChainClient) -> None:
    with pytest.raises(TypeError):
        chain.build_approve(DEPOSITOR.address, 8.2)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        chain.build_approve(DEPOSITOR.address, Decimal("8.2"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        chain.build_approve(DEPOSITOR.address, -1)


def test_a_different_transaction_with_a_used_nonce_is_refused(chain: ChainClient) -> None:
    signer = LocalKeySigner(PAYER.private_key)
    tx = chain.build_approve(PAYER.address, 1)
    sign_and_send(chain, signer, tx)
    with pytest.raises(NonceTaken, match="nonce was already used by another transaction"):
        chain.send_raw(signer.sign_transaction({**tx, "gas": tx["gas"] + 1}))


def test_a_mined_revert_and_a_missing_receipt_are_errors(
    chain: ChainClient, registered: int
) -> None:
    signer = LocalKeySigner(PAYER.private_key)
    tx = chain.build_approve(PAYER.address, 0)
    # Same nonce, fees and gas, but a deposit the exchange refuses (PAYER has no allowance left).
    tx["to"] = chain.network.exchange_contract
    tx["data"] = "0x" + _deposit_calldata(chain, registered, 10**12)
    tx["gas"] = 200_000
    tx_hash = chain.send_raw(signer.sign_transaction(tx))
    with pytest.raises(ChainError, match=f"transaction {tx_hash} reverted"):
        chain.wait_for_receipt(tx_hash, RECEIPT_TIMEOUT_S)
    unknown = "0x" + "ab" * 32
    assert not chain.transaction_known(unknown) and chain.receipt(unknown) is None
    with pytest.raises(ChainError, match=f"no receipt for transaction {unknown} after 0.3s"):
        chain.wait_for_receipt(unknown, 0.3)


def test_unreachable_node_is_a_chain_error_without_the_url_path(network: NetworkSpec) -> None:
    fast = RetryPolicy(max_attempts=2, base_delay=0.01)
    url = "http://127.0.0.1:9/v3/s3cret-api-key"
    with ChainClient(url, network, retry=fast) as chain, pytest.raises(ChainError) as caught:
        chain.read_accounts([(DEPOSITOR.address, None)])
    assert "cannot reach" in str(caught.value) and "s3cret" not in str(caught.value)
    assert chain.stats.http_requests == 2


def _deposit_calldata(chain: ChainClient, stark_key: int, amount: int) -> str:
    from eth_abi import encode
    from eth_utils import function_signature_to_4byte_selector

    selector = function_signature_to_4byte_selector("deposit(uint256,uint256,uint256,uint256)")
    args = encode(["uint256"] * 4, [stark_key, chain.network.collateral_asset_id, 1, amount])
    return (selector + args).hex()
