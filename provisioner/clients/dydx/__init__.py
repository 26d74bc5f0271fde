"""The dYdX v3 API client: endpoints (``client``), the wire exchange (``exchange``), keys, errors."""

from provisioner.clients.dydx.client import DydxClient
from provisioner.clients.dydx.errors import (
    AlreadyOnboarded,
    DydxError,
    NonDeterministicSigner,
    SignatureMismatch,
)
from provisioner.clients.dydx.keys import ApiCredentials, OnboardedAccount, StarkKeyPair

__all__ = [
    "AlreadyOnboarded",
    "ApiCredentials",
    "DydxClient",
    "DydxError",
    "NonDeterministicSigner",
    "OnboardedAccount",
    "SignatureMismatch",
    "StarkKeyPair",
]
