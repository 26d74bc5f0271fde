"""RemoteSigner against anvil's unlocked dev accounts: the key stays in anvil."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import pytest
from support.chain_client import RECEIPT_TIMEOUT_S, sign_and_send
from dydx3.eth_signing.onboarding_action import SignOnboardingAction
from dydx3.eth_signing.signers import SignWithKey
from eth_account import Account

from provisioner.clients.chain import ChainClient
from provisioner.manifest.model import NetworkSpec, RemoteSigner as RemoteSpec
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS
from provisioner.signers.base import SignerError
from provisioner.signers.factory import make_signer
from provisioner.signers.local import LocalKeySigner
from provisioner.signers.remote import RemoteSigner

pytestmark = pytest.mark.sandbox

ACCOUNT = DEV_ACCOUNTS[7]


class NoSecrets:
    def resolve(self, ref: object) -> str:
        raise AssertionError("a remote signer needs no secret")


def onboarding(chain_id: int) -> dict[str, object]:
    return SignOnboardingAction(SignWithKey(ACCOUNT.private_key), chain_id).get_eip712_message(
        action="dYdX Onboarding"
    )


def test_remote_typed_data_signature_equals_the_local_one(network: NetworkSpec) -> None:
    remote = RemoteSigner(network.rpc_url, ACCOUNT.address, 10)
    remote.check_address()
    local = LocalKeySigner(ACCOUNT.private_key)
    typed = onboarding(network.chain_id)
    assert remote.sign_typed_data(typed) == local.sign_typed_data(typed)


def test_remote_signs_raw_transactions_on_anvil(network: NetworkSpec, chain: ChainClient) -> None:
    remote = RemoteSigner(network.rpc_url, ACCOUNT.address, 10)
    assert remote.can_sign_raw_transactions  # anvil has eth_signTransaction
    tx = chain.build_approve(ACCOUNT.address, 1)
    raw = remote.sign_transaction(tx)
    assert Account.recover_transaction(raw) == ACCOUNT.address
    assert sign_and_send(chain, remote, tx).status == 1


def test_remote_send_transaction(network: NetworkSpec, chain: ChainClient) -> None:
    remote = RemoteSigner(network.rpc_url, ACCOUNT.address, 10)
    tx = chain.build_approve(ACCOUNT.address, 2)
    tx_hash = remote.send_transaction(tx)
    receipt = chain.wait_for_receipt(tx_hash, RECEIPT_TIMEOUT_S)
    assert receipt.status == 1
    assert chain.read_accounts([(ACCOUNT.address, None)])[ACCOUNT.address].usdc_allowance == 2


def test_factory_refuses_an_address_the_endpoint_does_not_serve(network: NetworkSpec) -> None:
    stranger = Account.create().address
    spec = RemoteSpec(url=network.rpc_url, timeout_seconds=5)
    assert (
        make_signer(spec, ACCOUNT.address, NoSecrets(), account="mm-remote").address
        == ACCOUNT.address
    )
    with pytest.raises(SignerError, match=f"does not sign for {stranger}"):
        make_signer(spec, stranger, NoSecrets(), account="mm-remote")
