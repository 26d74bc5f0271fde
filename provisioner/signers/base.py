"""The one interface every Ethereum signer offers to the rest of the tool."""

from __future__ import annotations

from typing import Any, Protocol


class SignerError(Exception):
    """The signer cannot sign (wrong address, unreachable, refused). Message is safe to show."""


class EthSigner(Protocol):
    @property
    def address(self) -> str:
        """EIP-55 checksummed address the signer signs for."""
        ...

    @property
    def can_sign_raw_transactions(self) -> bool:
        """True when ``sign_transaction`` works (local keys; remote signers with eth_signTransaction).

        Only raw-signing signers get the journal's "persist the signed bytes before
        broadcast" guarantee; the others journal the nonce and intent instead.
        """
        ...

    def sign_typed_data(self, typed_data: dict[str, Any]) -> str:
        """EIP-712 signature of a full typed-data dict (types, domain, primaryType, message): 0x + 130 hex, v in {27, 28}."""
        ...

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        """Raw signed transaction bytes for a fully specified tx (nonce, gas, fees, chainId)."""
        ...

    def send_transaction(self, tx: dict[str, Any]) -> str:
        """Have the signer sign and broadcast (eth_sendTransaction); returns the tx hash."""
        ...
