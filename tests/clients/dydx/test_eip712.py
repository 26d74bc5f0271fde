"""dYdX's EIP-712 messages, digests and key derivations built without dydx3, held to dydx3.

``provisioner/clients/dydx_eth.py`` builds them from keccak and eth_keys so that apply does not
import dydx3 (web3, sympy: about a second of CPU before every account's first step). Each
function must give exactly what dydx3 2.1.0 gives: the typed data a signer is shown, the
digest its signature is checked against, the STARK key and the default API key derived.
"""

import provisioner  # noqa: F401,I001  (the Python 3.11 import fix before dydx3)

import subprocess
import sys

import pytest
from dydx3.constants import OFF_CHAIN_KEY_DERIVATION_ACTION, OFF_CHAIN_ONBOARDING_ACTION
from dydx3.eth_signing import SignEthPrivateAction, SignOnboardingAction
from dydx3.eth_signing import util as dydx3_util
from dydx3.modules.onboarding import Onboarding
from eth_account import Account
from web3 import Web3

from provisioner.clients import dydx_eth
from provisioner.clients.dydx.errors import SignatureMismatch
from provisioner.redact import Redactor
from provisioner.signers.local import LocalKeySigner

NETWORKS = (1, 5, 11155111)  # mainnet names the web app in the onboarding messages
KEYS = (
    "0x" + "11" * 32,
    "0x" + "7f" * 31 + "01",
    "0x4c0883a69102937d6231471b5dbb6204fe512961708279f1e3b28d1a3c5d2b58",
)
ACTIONS = (OFF_CHAIN_ONBOARDING_ACTION, OFF_CHAIN_KEY_DERIVATION_ACTION)


class _Dydx3Adapter:
    """dydx3's signer interface over our local signer, with dydx3's own typed signature."""

    def __init__(self, signer: LocalKeySigner) -> None:
        self._signer = signer

    def sign(self, eip712_message: dict, message_hash: object, address: str | None) -> str:
        raw = self._signer.sign_typed_data(eip712_message)
        return str(dydx3_util.create_typed_signature(raw, 0))


def _signers(key: str) -> tuple[LocalKeySigner, dydx_eth.Dydx3Signer, _Dydx3Adapter]:
    signer = LocalKeySigner(key)
    return signer, dydx_eth.Dydx3Signer(signer, Redactor()), _Dydx3Adapter(signer)


@pytest.mark.parametrize("network_id", NETWORKS)
@pytest.mark.parametrize("action", ACTIONS)
def test_the_onboarding_messages_and_digests_are_dydx3s(network_id: int, action: str) -> None:
    theirs = SignOnboardingAction(None, network_id)
    message, digest = dydx_eth._onboarding(network_id, action)
    assert message == theirs.get_eip712_message(action=action)
    assert digest == bytes(theirs.get_hash(action=action))


@pytest.mark.parametrize("network_id", NETWORKS)
@pytest.mark.parametrize("key", KEYS)
def test_signatures_stark_keys_and_default_api_keys_are_dydx3s(network_id: int, key: str) -> None:
    signer, ours, theirs = _signers(key)
    address = signer.address
    for action, sign in (
        (OFF_CHAIN_ONBOARDING_ACTION, dydx_eth.onboarding_signature),
        (OFF_CHAIN_KEY_DERIVATION_ACTION, dydx_eth.stark_key_signature),
    ):
        expected = SignOnboardingAction(theirs, network_id).sign(address, action=action)
        assert sign(ours, network_id, address) == expected
        hashed = Web3.solidityKeccak(["uint256"], [int(expected, 16)])
        assert dydx_eth.stark_private_key(expected) == int(hashed.hex(), 16) >> 5
    onboarding = Onboarding(
        host="http://unused", eth_signer=theirs, network_id=network_id,
        default_address=address, api_timeout=None,
    )  # fmt: skip
    assert dydx_eth.default_credentials(ours, network_id, address) == (
        onboarding.recover_default_api_key_credentials(ethereum_address=address)
    )


@pytest.mark.parametrize("network_id", NETWORKS)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v3/api-keys", "{}"),
        ("DELETE", "/v3/api-keys?apiKeyId=8b6d9a1e-0000-4000-8000-000000000000", "{}"),
        ("GET", "/v3/ünïcode path?a=1&b=two", ""),
    ],
)
def test_eth_private_signatures_are_dydx3s(
    network_id: int, method: str, path: str, body: str
) -> None:
    signer, ours, theirs = _signers(KEYS[0])
    when = "2026-12-02T10:00:00.000Z"
    fields = {"method": method, "request_path": path, "body": body, "timestamp": when}
    action = SignEthPrivateAction(theirs, network_id)
    assert dydx_eth.eth_private_signature(ours, network_id, signer.address, **fields) == (
        action.sign(signer.address, **fields)
    )
    digest = dydx_eth._digest(network_id, dydx_eth._ETH_PRIVATE_FIELDS, {
        "method": method, "requestPath": path, "body": body, "timestamp": when,
    })  # fmt: skip
    assert digest == bytes(action.get_hash(**fields))


@pytest.mark.parametrize(
    "signature",
    [
        "0x00" + "ab" * 63 + "cd" + "1b00",  # r with a leading zero byte: dydx3 drops it
        "0x" + "ff" * 65 + "00",
        "0x" + "01" * 64 + "1c00",
    ],
)
def test_the_stark_key_hashes_the_signature_as_dydx3_does(signature: str) -> None:
    hashed = Web3.solidityKeccak(["uint256"], [int(signature, 16)])
    assert dydx_eth.stark_private_key(signature) == int(hashed.hex(), 16) >> 5


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("form", ["recovery id", "27/28", "27/28 in capitals"])
def test_typed_signatures_and_recovery_are_dydx3s(key: str, form: str) -> None:
    """A signer may give v as 0/1 or as 27/28: both become dydx3's typed signature."""
    acct = Account.from_key(key)
    digest = dydx_eth._onboarding_digest(5, OFF_CHAIN_ONBOARDING_ACTION)
    signed = Account._sign_hash(digest, acct.key)  # noqa: SLF001
    rs = f"{signed.r:064x}{signed.s:064x}"
    v = {"recovery id": f"{signed.v - 27:02x}", "27/28": f"{signed.v:02x}"}.get(
        form, f"{signed.v:02X}"
    )
    typed = dydx_eth.typed_signature(f"0x{rs}{v}")
    assert typed == dydx3_util.create_typed_signature(f"0x{rs}{v.lower()}", 0)
    assert dydx_eth.recover_typed(digest, typed) == acct.address
    assert dydx3_util.ec_recover_typed_signature(digest, typed) == acct.address


@pytest.mark.parametrize("raw", ["0x" + "ab" * 64 + "05", "0x" + "ab" * 64, "0xzz"])
def test_a_malformed_signature_is_refused_as_mismatched(raw: str) -> None:
    class Broken(LocalKeySigner):
        def sign_typed_data(self, typed_data: dict) -> str:
            return raw

    signer = Broken(KEYS[0])
    with pytest.raises(SignatureMismatch, match="malformed"):
        dydx_eth.onboarding_signature(dydx_eth.Dydx3Signer(signer, Redactor()), 5, signer.address)


def test_a_signature_of_another_key_is_refused() -> None:
    other = LocalKeySigner(KEYS[1])

    class Impostor(LocalKeySigner):
        def sign_typed_data(self, typed_data: dict) -> str:
            return other.sign_typed_data(typed_data)

    signer = Impostor(KEYS[0])
    with pytest.raises(SignatureMismatch, match="signed something else"):
        dydx_eth.stark_key_signature(dydx_eth.Dydx3Signer(signer, Redactor()), 5, signer.address)


def test_signing_for_apply_imports_neither_dydx3_nor_web3_nor_sympy() -> None:
    code = (
        "import sys, provisioner.clients.dydx_eth, provisioner.clients.dydx.client;"
        "print(sorted(m for m in ('dydx3', 'web3', 'sympy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
