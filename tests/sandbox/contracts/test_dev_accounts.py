"""The sandbox's well-known keys and the registration signature (reference vector, starkex-l1.md §3)."""

import pytest
from eth_account import Account
from eth_utils import keccak
from web3 import Web3

from provisioner.sandbox.dev_accounts import (
    DEV_ACCOUNTS,
    DEV_MNEMONIC,
    OPERATOR_KEY_SEED,
    SANDBOX_OPERATOR_ADDRESS,
    SANDBOX_OPERATOR_KEY,
    address_of,
    registration_digest,
    sign_registration,
)

pytestmark = pytest.mark.sandbox

VECTOR_ADMIN_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
VECTOR_ETH_KEY = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
VECTOR_STARK_KEY = 0x26DA8D11938B76025862BE14FDB8B28438827F73E75E86F7BFA38B196951FA7
VECTOR_DIGEST = "e668183465528a53e55bab14b75feccb307bf300b3bbf555221e95050ff8b6e5"
VECTOR_SIGNATURE = (
    "0x1ccc46e2098a83da3b98537125d32e330f68c854ccd38e8cedd00ee794bc6052"
    "6ed75db9f7438a4abd9e25b7a355e1240fdfce5520e1e9c69ebf9fb4b45fc5ec"
    "1b"
)


def test_registration_signature_matches_the_reference_vector() -> None:
    assert DEV_ACCOUNTS[0].private_key == VECTOR_ADMIN_KEY
    assert registration_digest(VECTOR_ETH_KEY, VECTOR_STARK_KEY).hex() == VECTOR_DIGEST
    signature = sign_registration(VECTOR_ETH_KEY, VECTOR_STARK_KEY, admin_key=VECTOR_ADMIN_KEY)
    assert signature == VECTOR_SIGNATURE


def test_operator_signature_shape_and_signer() -> None:
    signature = sign_registration(VECTOR_ETH_KEY.lower(), VECTOR_STARK_KEY)
    assert len(signature) == 132 and signature == signature.lower()
    assert int(signature[-2:], 16) in (27, 28)
    raw = bytes.fromhex(signature[2:])
    vrs = (raw[64], int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"))
    digest = registration_digest(VECTOR_ETH_KEY, VECTOR_STARK_KEY)
    assert Account._recover_hash(digest, vrs=vrs) == SANDBOX_OPERATOR_ADDRESS


@pytest.mark.parametrize(
    ("address", "stark_key"),
    [
        ("0x70997970c51812dc3a010c7d01b50e0d17dc79c8", 0),
        ("0x70997970c51812dc3a010c7d01b50e0d17dc79c8", 2**256),
        ("0x70997970c51812dc3a010c7d01b50e0d17dc79", 1),
        ("70997970c51812dc3a010c7d01b50e0d17dc79c8", 1),
        ("0x70997970C51812dc3A010C7d01b50e0d17dc79c8", 1),  # bad checksum
    ],
)
def test_sign_registration_rejects_bad_input(address: str, stark_key: int) -> None:
    with pytest.raises(ValueError):
        sign_registration(address, stark_key)


def test_operator_key_is_derived_from_its_seed_and_is_not_a_dev_account() -> None:
    assert "0x" + keccak(OPERATOR_KEY_SEED).hex() == SANDBOX_OPERATOR_KEY
    assert address_of(SANDBOX_OPERATOR_KEY) == SANDBOX_OPERATOR_ADDRESS
    assert SANDBOX_OPERATOR_ADDRESS not in {a.address for a in DEV_ACCOUNTS}


def test_dev_accounts_come_from_the_anvil_mnemonic(w3: Web3) -> None:
    Account.enable_unaudited_hdwallet_features()
    assert len(DEV_ACCOUNTS) == 10
    for index, (address, private_key) in enumerate(DEV_ACCOUNTS):
        derived = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        assert (derived.address, "0x" + bytes(derived.key).hex()) == (address, private_key)
    assert w3.eth.accounts == [a.address for a in DEV_ACCOUNTS]
