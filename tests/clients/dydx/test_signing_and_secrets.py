"""What the client derives locally from signatures, and what it keeps out of sight. No network."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

from collections.abc import Callable

import pytest
from conftest import (
    ClientKit,
    ImpostorSigner,
    KeySigner,
    MalleableSigner,
)
from dydx3 import Client

from provisioner.clients.dydx import (
    ApiCredentials,
    NonDeterministicSigner,
    SignatureMismatch,
    StarkKeyPair,
)
from provisioner.errors import ProvisionerError
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS

NOWHERE = "http://127.0.0.1:9"  # nothing listens: these tests must not need the network
REFERENCE_KEY = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"
DEV_KEYS = [DEV_ACCOUNTS[i].private_key for i in (7, 8, 9)]


@pytest.fixture
def kit(make_client: Callable[..., ClientKit]) -> ClientKit:
    return make_client(NOWHERE)


def test_reference_vector(kit: ClientKit) -> None:
    pair = kit.client.derive_stark_key(KeySigner(REFERENCE_KEY))
    assert (
        pair.private_key_hex == "0x2d21c094fedea3e72bef27fbcdceaafd34e88fc4b7586859e26e98b21e63a60"
    )
    assert (
        pair.public_key_hex == "0x15e2e074a7ac9e78edb2ee9f11a0c0c0a080c79758ab81616eea9c032c75265"
    )
    assert (
        pair.public_key_y_hex == "0x360408546b64238f80d7a8a336d7304d75f122a7e5bb22cbb7a14f550eac5a8"
    )
    creds = kit.client.recover_default_credentials(KeySigner(REFERENCE_KEY))
    assert creds == ApiCredentials(
        key="30cb6046-8f4a-5677-a19c-a494ccb7c7e5",
        secret="4Yd_6JtH_-I2taoNQKAhkCifnVHQ2Unue88sIeuc",
        passphrase="Db1GQK5KpI_qeddgjF66",
    )
    assert kit.client.stats == {}


@pytest.mark.parametrize("key", DEV_KEYS, ids=["dev7", "dev8", "dev9"])
def test_derivations_equal_dydx3s_own(kit: ClientKit, key: str) -> None:
    theirs = Client(host=NOWHERE, network_id=11155111, eth_private_key=key).onboarding
    ours = kit.client.derive_stark_key(KeySigner(key))
    derived = theirs.derive_stark_key()
    assert ours == StarkKeyPair(
        private_key=int(derived["private_key"], 16),
        public_key=int(derived["public_key"], 16),
        public_key_y=int(derived["public_key_y_coordinate"], 16),
    )
    assert ours.public_key_hex == derived["public_key"]
    assert ours == StarkKeyPair.from_private_key(ours.private_key)
    default = theirs.recover_default_api_key_credentials()
    assert kit.client.recover_default_credentials(KeySigner(key)).as_dydx3() == default


def test_the_determinism_check_signs_twice_and_can_be_skipped(kit: ClientKit) -> None:
    signer = KeySigner(DEV_KEYS[0])
    kit.client.derive_stark_key(signer)
    assert signer.calls == 2
    kit.client.derive_stark_key(signer, check_deterministic=False)
    assert signer.calls == 3


def test_a_signer_with_changing_signatures_is_refused(kit: ClientKit) -> None:
    signer = MalleableSigner(DEV_KEYS[1])
    with pytest.raises(NonDeterministicSigner) as caught:
        kit.client.derive_stark_key(signer)
    assert isinstance(caught.value, ProvisionerError)
    assert signer.address in str(caught.value)
    # without the check the first signature is used, and the two calls disagree
    first = kit.client.derive_stark_key(signer, check_deterministic=False)
    second = kit.client.derive_stark_key(signer, check_deterministic=False)
    assert first != second


def test_a_signature_by_another_key_is_refused(kit: ClientKit) -> None:
    impostor = ImpostorSigner(DEV_KEYS[0], claimed=DEV_ACCOUNTS[8].address)
    with pytest.raises(SignatureMismatch, match=DEV_ACCOUNTS[7].address):
        kit.client.derive_stark_key(impostor)


def test_the_default_key_is_never_deleted(kit: ClientKit) -> None:
    signer = KeySigner(DEV_KEYS[2])
    default = kit.client.recover_default_credentials(signer)
    for spelled in (default.key, default.key.upper(), f" {default.key} "):
        with pytest.raises(ProvisionerError, match="default key"):
            kit.client.delete_api_key(signer, spelled, default_key=default.key)
    assert kit.client.stats == {}


def test_secrets_are_registered_and_never_in_reprs(kit: ClientKit) -> None:
    signer = KeySigner(DEV_KEYS[0])
    pair = kit.client.derive_stark_key(signer)
    creds = kit.client.recover_default_credentials(signer)
    shown = f"{pair!r} {pair} {creds!r} {creds}"
    for secret in (
        pair.private_key_hex,
        f"{pair.private_key:064x}",
        creds.secret,
        creds.passphrase,
    ):
        assert secret not in shown
        assert kit.redactor.redact(f"value={secret}.") == "value=***."
    assert str(pair.private_key) not in shown
    assert pair.public_key_hex in shown and creds.key in shown
    # both signatures the secrets come from are secrets too
    theirs = Client(host=NOWHERE, network_id=11155111, eth_private_key=DEV_KEYS[0]).onboarding
    stark_sig = theirs.signer.sign(signer.address, action="dYdX STARK Key")
    onboarding_sig = theirs.signer.sign(signer.address, action="dYdX Onboarding")
    assert kit.redactor.redact(stark_sig) == "***"
    assert kit.redactor.redact(onboarding_sig) == "***"


def test_a_bad_api_secret_names_the_key_not_the_secret(kit: ClientKit) -> None:
    from provisioner.clients.dydx import DydxError

    canary = "CANARY-secret-x"  # 15 characters: a padding error
    creds = ApiCredentials(
        key="0badc0de-0000-0000-0000-000000000000", secret=canary, passphrase="pp-canary-x"
    )
    with pytest.raises(DydxError) as caught:
        kit.client.list_api_keys(DEV_ACCOUNTS[7].address, creds)
    message = str(caught.value)
    assert creds.key in message and "base64url" in message
    assert canary not in message and "pp-canary-x" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert kit.client.stats == {}
