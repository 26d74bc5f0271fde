"""What needs the Ethereum key: dydx3 builds every EIP-712 message and digest, our signer signs.

Imported only when a request or a key derivation needs an Ethereum signature
(onboarding, STARK key, default API key, POST/DELETE /v3/api-keys), because dydx3
pulls in web3 and sympy, a second of start-up that a converged plan never
needs. (It imports safely: ``provisioner/__init__`` applies the Python 3.11 fix first.)
"""

from __future__ import annotations

from functools import cache
from typing import Any

from dydx3.constants import (
    OFF_CHAIN_KEY_DERIVATION_ACTION,
    OFF_CHAIN_ONBOARDING_ACTION,
    SIGNATURE_TYPE_NO_PREPEND,
)
from dydx3.eth_signing import SignEthPrivateAction, SignOnboardingAction
from dydx3.eth_signing import util as eth_util
from dydx3.modules.onboarding import Onboarding
from web3 import Web3

from provisioner.clients.dydx.errors import SignatureMismatch
from provisioner.redact import Redactor
from provisioner.signers.base import EthSigner


class Dydx3Signer:
    """dydx3's signer interface over our ``EthSigner``: dydx3 builds the typed data, ours signs.

    Each signature is checked against dydx3's own digest, so a signer that signs
    something else (another key, another EIP-712 encoding) fails here instead of
    yielding a wrong STARK key.
    """

    def __init__(self, signer: EthSigner, redactor: Redactor) -> None:
        self._signer = signer
        self._redactor = redactor

    def sign(
        self, eip712_message: dict[str, Any], message_hash: Any, opt_signer_address: str | None
    ) -> str:
        address = self._signer.address
        if opt_signer_address is not None and opt_signer_address.lower() != address.lower():
            raise SignatureMismatch(
                f"asked to sign for {opt_signer_address} with the signer of {address}"
            )
        raw = self._signer.sign_typed_data(eip712_message)
        self._redactor.register(raw)
        try:
            typed = str(eth_util.create_typed_signature(raw, SIGNATURE_TYPE_NO_PREPEND))
            recovered = eth_util.ec_recover_typed_signature(message_hash, typed)
        except Exception:
            raise SignatureMismatch(
                f"the signer of {address} returned a malformed signature"
            ) from None
        self._redactor.register(typed)
        if not eth_util.addresses_are_equal(recovered, address):
            raise SignatureMismatch(
                f"the signer of {address} signed something else than dYdX's EIP-712 message "
                f"(its signature recovers to {recovered})"
            )
        return typed


class Replay:
    """A dydx3 signer that answers with a signature we already hold for the same message."""

    def __init__(self, typed_signature: str) -> None:
        self._typed = typed_signature

    def sign(
        self, eip712_message: dict[str, Any], message_hash: Any, opt_signer_address: str | None
    ) -> str:
        return self._typed


class _OnboardingAction(SignOnboardingAction):  # type: ignore[misc]  # dydx3 is untyped
    """dydx3's onboarding action, its digest remembered: the two onboarding messages name no
    address, so their digests depend on the network alone, and dydx3 would hash them again
    (with web3's slow ABI packing) for every signature."""

    def get_hash(self, action: str) -> Any:
        return _onboarding_digest(self.network_id, action)


class _EthPrivateAction(SignEthPrivateAction):  # type: ignore[misc]
    """dydx3's action for Ethereum-key requests, its domain hash remembered (network alone)."""

    def get_domain_hash(self) -> Any:
        return _domain_hash(self.network_id)


@cache
def _onboarding_digest(network_id: int, action: str) -> Any:
    return SignOnboardingAction(None, network_id).get_hash(action=action)


@cache
def _domain_hash(network_id: int) -> Any:
    return SignEthPrivateAction(None, network_id).get_domain_hash()


def onboarding_signature(signer: Dydx3Signer | Replay, network_id: int, address: str) -> str:
    """The "dYdX Onboarding" signature: ``DYDX-SIGNATURE`` of POST /v3/onboarding, and the
    seed of the default API key."""
    action = _OnboardingAction(signer, network_id)
    return str(action.sign(address, action=OFF_CHAIN_ONBOARDING_ACTION))


def stark_key_signature(signer: Dydx3Signer, network_id: int, address: str) -> str:
    """The "dYdX STARK Key" signature the STARK key pair is derived from."""
    action = _OnboardingAction(signer, network_id)
    return str(action.sign(address, action=OFF_CHAIN_KEY_DERIVATION_ACTION))


def stark_private_key(signature: str) -> int:
    """dydx3's derivation: keccak of the signature taken as a uint256 (so a leading zero byte
    of r is dropped, as dydx3 does), its top 251 bits."""
    hashed = Web3.solidityKeccak(["uint256"], [int(signature, 16)])
    return int(hashed.hex(), 16) >> 5


def default_credentials(
    signer: Dydx3Signer | Replay, network_id: int, address: str, api_url: str
) -> dict[str, str]:
    """The default API key dYdX derives from the onboarding signature: key, secret, passphrase."""
    onboarding = Onboarding(  # makes no request: the derivation is local
        host=api_url,
        eth_signer=signer,
        network_id=network_id,
        default_address=address,
        api_timeout=None,
    )
    recovered: dict[str, str] = onboarding.recover_default_api_key_credentials(
        ethereum_address=address
    )
    return recovered


def eth_private_signature(
    signer: Dydx3Signer,
    network_id: int,
    address: str,
    *,
    method: str,
    request_path: str,
    body: str,
    timestamp: str,
) -> str:
    """``DYDX-SIGNATURE`` of an Ethereum-key request (POST/DELETE /v3/api-keys)."""
    action = _EthPrivateAction(signer, network_id)
    return str(
        action.sign(
            address, method=method, request_path=request_path, body=body, timestamp=timestamp
        )
    )
