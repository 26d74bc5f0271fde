"""A signer holding the private key in this process (from Vault, the environment, a file or a keystore)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from eth_account import Account
from eth_account.messages import encode_structured_data
from eth_account.signers.local import LocalAccount

from provisioner.signers.base import SignerError

REQUIRED_TX_FIELDS = ("nonce", "gas", "chainId")


class LocalKeySigner:
    """Deterministic (RFC 6979) signing with a key held in memory; it never broadcasts."""

    def __init__(self, private_key: str) -> None:
        try:
            self._account: LocalAccount = Account.from_key(private_key)
        except (ValueError, TypeError):
            # The exception text could quote the value: say only what was expected.
            raise SignerError("the private key is not 32 bytes of hex") from None

    def __repr__(self) -> str:
        return f"LocalKeySigner({self.address})"

    @property
    def address(self) -> str:
        return str(self._account.address)

    @property
    def can_sign_raw_transactions(self) -> bool:
        return True

    def sign_typed_data(self, typed_data: dict[str, Any]) -> str:
        try:
            message = _encoded(json.dumps(typed_data, sort_keys=True))
        except (ValueError, TypeError, KeyError) as exc:
            raise SignerError(f"not a valid EIP-712 typed-data message: {exc}") from None
        signature = bytes(self._account.sign_message(message).signature)
        return "0x" + signature.hex()

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        missing = [name for name in REQUIRED_TX_FIELDS if name not in tx]
        if missing:
            raise SignerError(f"transaction is missing {', '.join(missing)}")
        sender = tx.get("from")
        if sender is not None and str(sender).lower() != self.address.lower():
            raise SignerError(f"transaction is from {sender}, this signer signs for {self.address}")
        unsigned = {k: v for k, v in tx.items() if k != "from"}
        try:
            signed = self._account.sign_transaction(unsigned)
        except (ValueError, TypeError) as exc:
            raise SignerError(f"cannot sign the transaction: {exc}") from None
        return bytes(signed.rawTransaction)

    def send_transaction(self, tx: dict[str, Any]) -> str:
        raise SignerError(
            "a local key signer does not broadcast: sign with sign_transaction and send the raw bytes"
        )


@lru_cache(maxsize=64)
def _encoded(typed_data_json: str) -> Any:
    """The signable form of a typed-data message. dYdX's onboarding messages are the same for
    every account, so a run onboarding many accounts encodes each once."""
    return encode_structured_data(text=typed_data_json)
