"""A signer reached over JSON-RPC (clef, web3signer, a custody policy engine, anvil's unlocked accounts).

The key never enters this process. Every call has its own timeout: remote signers may
wait for a policy engine or a person, so ``timeout_seconds`` is per signature.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

from eth_account import Account
from eth_account.messages import encode_structured_data
from eth_utils import is_address, to_checksum_address

from provisioner.clients.transport import HttpTransport, Transport, TransportError
from provisioner.redact import display_url
from provisioner.signers.base import SignerError

CONNECT_TIMEOUT_S = 5.0
SIGNATURE_HEX_LEN = 130
_HEADERS = {"Content-Type": "application/json"}
_METHOD_MISSING_HINTS = (
    "method not found",
    "not supported",
    "does not exist",
    "unsupported",
    "not available",
)


class _RpcError(Exception):
    def __init__(self, code: object, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def method_missing(self) -> bool:
        return self.code == -32601 or any(h in self.message.lower() for h in _METHOD_MISSING_HINTS)


class RemoteSigner:
    """Signs through ``eth_signTypedData_v4`` and ``eth_signTransaction`` (or ``eth_sendTransaction``)."""

    def __init__(
        self,
        url: str,
        address: str,
        timeout_seconds: float = 120.0,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        transport: Transport | None = None,
    ) -> None:
        """``transport``: the run's shared one; without it the signer makes its own."""
        if not is_address(address):
            raise SignerError(f"remote signer: {address!r} is not an Ethereum address")
        if timeout_seconds <= 0:
            raise SignerError("remote signer: timeout_seconds must be positive")
        self._url = url
        self._where = display_url(url)
        self._address = to_checksum_address(address)
        self._connect_timeout = min(connect_timeout, timeout_seconds)
        self._timeout = timeout_seconds
        self._transport = transport or HttpTransport()
        self._ids = itertools.count(1)
        self._probe_lock = threading.Lock()
        self._raw_signing: bool | None = None

    def __repr__(self) -> str:
        return f"RemoteSigner({self._where}, {self._address})"

    @property
    def address(self) -> str:
        return self._address

    @property
    def can_sign_raw_transactions(self) -> bool:
        with self._probe_lock:
            if self._raw_signing is None:
                self._raw_signing = self._probe_sign_transaction()
            return self._raw_signing

    def served_addresses(self) -> list[str]:
        result = self._request("eth_accounts", [])
        if not isinstance(result, list) or not all(is_address(a) for a in result):
            raise SignerError(f"remote signer at {self._where}: eth_accounts gave {result!r}")
        return [to_checksum_address(a) for a in result]

    def check_address(self) -> None:
        """Raise unless the endpoint lists our address in ``eth_accounts``."""
        served = self.served_addresses()
        if self._address not in served:
            listed = ", ".join(served) if served else "no address"
            raise SignerError(
                f"remote signer at {self._where} does not sign for {self._address} (it serves {listed})"
            )

    def sign_typed_data(self, typed_data: dict[str, Any]) -> str:
        try:
            message = encode_structured_data(primitive=typed_data)
            payload = json.dumps(typed_data)
        except (ValueError, TypeError, KeyError) as exc:
            raise SignerError(f"not a valid EIP-712 typed-data message: {exc}") from None
        result = self._request("eth_signTypedData_v4", [self._address, payload])
        signature = _normalise_signature(result, self._where)
        if Account.recover_message(message, signature=signature) != self._address:
            raise SignerError(
                f"remote signer at {self._where} returned a typed-data signature that is not from {self._address}"
            )
        return signature

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        if not self.can_sign_raw_transactions:
            raise SignerError(
                f"remote signer at {self._where} does not offer eth_signTransaction; use send_transaction"
            )
        result = self._request("eth_signTransaction", [self._tx_json(tx)])
        raw_hex = result.get("raw") if isinstance(result, dict) else result  # geth/clef: {raw, tx}
        try:
            raw = bytes.fromhex(str(raw_hex).removeprefix("0x"))
            sender = Account.recover_transaction(raw)
        except Exception:  # noqa: BLE001 - anything undecodable is the signer's fault
            raise SignerError(
                f"remote signer at {self._where}: eth_signTransaction returned no valid signed transaction"
            ) from None
        if sender != self._address:
            raise SignerError(
                f"remote signer at {self._where} signed the transaction as {sender}, expected {self._address}"
            )
        return raw

    def send_transaction(self, tx: dict[str, Any]) -> str:
        result = self._request("eth_sendTransaction", [self._tx_json(tx)], may_have_acted=True)
        if not isinstance(result, str) or len(result) != 66 or not result.startswith("0x"):
            raise SignerError(
                f"remote signer at {self._where}: eth_sendTransaction gave {result!r}"
            )
        return result.lower()

    # -- JSON-RPC -----------------------------------------------------------------------

    def _probe_sign_transaction(self) -> bool:
        """Ask for eth_signTransaction with no parameters.

        A signer that has the method rejects the empty parameters; one that has not says
        "method not found". Nothing gets signed and no approval is requested.
        """
        try:
            self._call("eth_signTransaction", [])
        except _RpcError as err:
            return not err.method_missing
        return True

    def _request(self, method: str, params: list[Any], *, may_have_acted: bool = False) -> Any:
        try:
            return self._call(method, params, may_have_acted=may_have_acted)
        except _RpcError as err:
            raise SignerError(
                f"remote signer at {self._where} refused {method}: {err.message} (code {err.code})"
            ) from None

    def _call(self, method: str, params: list[Any], *, may_have_acted: bool = False) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self._transport.request(
                "POST",
                self._url,
                body=json.dumps(body),
                headers=_HEADERS,
                timeout=self._timeout,
                connect_timeout=self._connect_timeout,
            )
        except TransportError as exc:
            if not exc.maybe_sent:
                raise SignerError(
                    f"remote signer at {self._where} is unreachable ({exc.reason})"
                ) from None
            if exc.timeout:
                after = (
                    "; it may still sign and broadcast: look the transaction up by nonce before retrying"
                    if may_have_acted
                    else ""
                )
                raise SignerError(
                    f"remote signer at {self._where} did not answer {method} within {self._timeout:g}s{after}"
                ) from None
            raise SignerError(
                f"remote signer at {self._where} is unreachable ({exc.reason})"
            ) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
            error = answer["error"]
            raise _RpcError(error.get("code"), str(error.get("message", "")))
        if response.status_code != 200:
            raise SignerError(
                f"remote signer at {self._where} answered {method} with HTTP {response.status_code}"
            )
        if not isinstance(answer, dict) or "result" not in answer:
            raise SignerError(f"remote signer at {self._where}: {method} gave no JSON-RPC result")
        return answer["result"]

    def _tx_json(self, tx: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self._address}
        for key, value in tx.items():
            if key == "from":
                if str(value).lower() != self._address.lower():
                    raise SignerError(
                        f"transaction is from {value}, this signer signs for {self._address}"
                    )
            elif isinstance(value, bool):
                raise SignerError(f"transaction field {key} is a bool")
            elif isinstance(value, int):
                out[key] = hex(value)
            elif isinstance(value, bytes):
                out[key] = "0x" + value.hex()
            else:
                out[key] = value
        return out


def _normalise_signature(result: object, where: str) -> str:
    text = str(result).lower().removeprefix("0x") if isinstance(result, str) else ""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != SIGNATURE_HEX_LEN // 2:
        raise SignerError(f"remote signer at {where} returned no 65-byte signature")
    v = raw[64] + 27 if raw[64] in (0, 1) else raw[64]
    if v not in (27, 28):
        raise SignerError(f"remote signer at {where} returned a signature with v={raw[64]}")
    return "0x" + raw[:64].hex() + bytes([v]).hex()
