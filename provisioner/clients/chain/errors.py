"""What the chain package raises: every message names the node by host only, never by URL path."""

from __future__ import annotations

from provisioner.clients.chain.abi import decode_revert, hex_bytes, reason_in_message
from provisioner.errors import ProvisionerError


class ChainError(ProvisionerError):
    """The node refused, failed or could not be reached. Messages carry no URL path or query."""


class RpcError(ChainError):
    """A JSON-RPC error object from the node."""

    def __init__(self, method: str, code: object, message: str, data: object = None) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data

    @property
    def revert_reason(self) -> str | None:
        """The decoded reason (Error(string), Panic(uint256)) if this is an EVM revert ("" for a
        bare revert), else None; printable text, never the payload's raw bytes."""
        payload = self.data.get("data") if isinstance(self.data, dict) else self.data
        decoded = decode_revert(hex_bytes(payload) if isinstance(payload, str) else None)
        if decoded is not None:
            return decoded
        prefix = "execution reverted"
        if self.message.lower().startswith(prefix):
            return reason_in_message(self.message[len(prefix) :].lstrip(": "))
        if self.code == 3:
            return ""
        return None


class RevertError(ChainError):
    """A call or gas estimate reverted; ``reason`` is the contract's revert string."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class NonceTaken(ChainError):
    """The node refused signed bytes because another transaction has used their nonce: they
    can never be mined."""

    def __init__(self, tx_hash: str) -> None:
        super().__init__(
            f"transaction {tx_hash} was refused: its nonce was already used by another transaction"
        )
        self.tx_hash = tx_hash


class FeeTooHigh(ChainError):
    """The fee the node asks for now is over the network's ``max_fee_gwei``: nothing is signed."""
