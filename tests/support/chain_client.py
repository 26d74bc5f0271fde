"""Helpers for the chain client tests: fresh STARK keys, sign-send-wait."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import secrets

from dydx3.starkex.helpers import private_key_to_public_key_pair_hex

from provisioner.clients.chain import ChainClient, Receipt
from provisioner.signers.base import EthSigner

RECEIPT_TIMEOUT_S = 10.0


def random_stark_key() -> int:
    """A fresh STARK public key (on the curve), so reruns against a kept sandbox never collide."""
    private_key = secrets.randbelow(2**250) + 1
    return int(private_key_to_public_key_pair_hex(hex(private_key))[0], 16)


def sign_and_send(chain: ChainClient, signer: EthSigner, tx: dict[str, object]) -> Receipt:
    raw = signer.sign_transaction(tx)
    tx_hash = chain.send_raw(raw)
    return chain.wait_for_receipt(tx_hash, RECEIPT_TIMEOUT_S)
