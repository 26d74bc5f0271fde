"""The dYdX v3 API client the reconciler uses: dydx3 builds what the Ethereum key signs, we send.

dydx3 computes every EIP-712 message and digest and the derivations from signatures
(``dydx_eth``, imported only when an Ethereum signature is needed); HMAC signatures,
paths and ids (``dydx_wire``) and STARK public keys (``stark_curve``) are computed here,
held to dydx3 by the tests. The HTTP is ours (``exchange``: the shared transport, the
rate limiter and the retry policy; dydx3 sends through a process-wide session with
neither). Every secret that passes through (STARK private key, API
secrets and passphrases, and the two signatures they are derived from) is registered
with the redactor before anything else can print it.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

from provisioner.clients import dydx_wire
from provisioner.clients.dydx.errors import AlreadyOnboarded, DydxError, NonDeterministicSigner
from provisioner.clients.dydx.exchange import Exchange, Request
from provisioner.clients.dydx.keys import ApiCredentials, OnboardedAccount, StarkKeyPair
from provisioner.clients.ratelimit import RateLimiter
from provisioner.clients.retry import Retryability, RetryPolicy, classify
from provisioner.clients.transport import HttpTransport, Transport
from provisioner.errors import ProvisionerError
from provisioner.redact import Redactor
from provisioner.signers.base import EthSigner

Log = Callable[[str], None]

_SIGNATURE_RE = re.compile(r"0x[0-9a-fA-F]{130}")


class DydxClient:
    """Thread-safe client for the v3 endpoints onboarding needs."""

    def __init__(
        self,
        api_url: str,
        network_id: int,
        *,
        redactor: Redactor,
        retry: RetryPolicy,
        limiter: RateLimiter,
        transport: Transport | None = None,
        log: Log | None = None,
        timeout: float = 10.0,
    ) -> None:
        """``transport``: the run's shared one; without it the client makes (and closes) its own."""
        self.api_url = api_url.rstrip("/")
        self.network_id = int(network_id)
        self._redactor = redactor
        self._transport = transport or HttpTransport()
        self._closes_transport = transport is None
        self._http = Exchange(
            self.api_url,
            self._transport,
            redactor=redactor,
            retry=retry,
            limiter=limiter,
            log=log,
            timeout=timeout,
        )

    def close(self) -> None:
        if self._closes_transport:
            self._transport.close()

    def __enter__(self) -> DydxClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def stats(self) -> dict[str, int]:
        """HTTP requests sent so far (retries included), by route: ``{"GET /v3/users/exists": 2}``."""
        return self._http.stats

    @property
    def request_count(self) -> int:
        return sum(self._http.stats.values())

    # ---- public

    def user_exists(self, address: str) -> bool:
        path = dydx_wire.query_path("/v3/users/exists", {"ethereumAddress": address})
        data = self._http.call(
            Request("GET", path, "GET /v3/users/exists", None, dict), idempotent=True
        )
        exists = data.get("exists")
        if not isinstance(exists, bool):
            raise self._http.unexpected("GET /v3/users/exists")
        return exists

    # ---- derived locally from Ethereum signatures

    def derive_stark_key(
        self, signer: EthSigner, *, check_deterministic: bool = True
    ) -> StarkKeyPair:
        """The STARK key pair of dYdX's "dYdX STARK Key" signature; with the check, signs twice and compares."""
        from provisioner.clients import dydx_eth

        adapter = dydx_eth.Dydx3Signer(signer, self._redactor)
        first = dydx_eth.stark_key_signature(adapter, self.network_id, signer.address)
        pair = self._stark_pair(dydx_eth.stark_private_key(first))
        if check_deterministic:
            # The key is a hash of the signature: comparing a second signature is the whole check.
            second = dydx_eth.stark_key_signature(adapter, self.network_id, signer.address)
            if first != second:
                raise NonDeterministicSigner(
                    f"the signer of {signer.address} gave two different signatures for the same "
                    "message, so a STARK key derived from it could never be derived again; use a "
                    "deterministic (RFC 6979) signer, or import the STARK key pair instead"
                )
        return pair

    def recover_default_credentials(self, signer: EthSigner) -> ApiCredentials:
        """The default API key, derived from the "dYdX Onboarding" signature as dYdX did."""
        from provisioner.clients import dydx_eth

        adapter = dydx_eth.Dydx3Signer(signer, self._redactor)
        return self._default_credentials(adapter, signer.address)

    # ---- onboarding

    def onboard(
        self, signer: EthSigner, stark: StarkKeyPair
    ) -> tuple[OnboardedAccount, ApiCredentials]:
        """POST /v3/onboarding. An ambiguous failure (timeout, 5xx) is resolved by asking whether
        the user exists: if dYdX created it, its account is read back with the default key derived
        from our onboarding signature; if not, the request is repeated. A 409 to a first attempt
        raises ``AlreadyOnboarded``: dYdX itself is the check that no user exists yet, so no
        separate (rate-limited, public) question is asked before."""
        address = signer.address
        from provisioner.clients import dydx_eth

        adapter = dydx_eth.Dydx3Signer(signer, self._redactor)
        signature = dydx_eth.onboarding_signature(adapter, self.network_id, address)
        body = dydx_wire.compact_json(
            {"starkKey": stark.public_key_hex, "starkKeyYCoordinate": stark.public_key_y_hex}
        )
        request = Request(
            "POST",
            "/v3/onboarding",
            "POST /v3/onboarding",
            address,
            lambda: {"DYDX-SIGNATURE": signature, "DYDX-ETHEREUM-ADDRESS": address},
            body,
        )
        was_ambiguous = False

        def attempt() -> dict[str, Any] | None:
            nonlocal was_ambiguous
            try:
                return self._http.attempt(request)
            except Exception as error:
                verdict, reason = classify(error)
                if isinstance(error, DydxError) and error.status == 409:
                    if not was_ambiguous:  # a first attempt: dYdX had the user already
                        raise AlreadyOnboarded(
                            str(error), status=409, msg=error.msg, route=error.route
                        ) from None
                    # else our earlier, unanswered attempt may have created it: look below
                elif verdict is not Retryability.IF_IDEMPOTENT:
                    raise
                was_ambiguous = True
                self._http.log(
                    f"dYdX POST /v3/onboarding for {address}: {reason}; checking whether the user exists"
                )
                if self.user_exists(address):
                    return None
                raise  # nothing was created: repeating is harmless

        data = self._http.with_retry(request.route, attempt, idempotent=True)
        if data is None:
            self._http.log(
                f"dYdX had onboarded {address} before the answer was lost; reading its account"
            )
            creds = self._default_credentials(dydx_eth.Replay(signature), address)
            try:
                account = self.get_account(address, creds)
            except DydxError as error:
                raise DydxError(
                    f"dYdX has a user for {address}, but reading its account with the default API "
                    f"key failed ({error})",
                    status=error.status,
                    msg=error.msg,
                    route=error.route,
                ) from None
        else:
            try:
                api = data["apiKey"]
                creds = self._credentials(api["key"], api["secret"], api["passphrase"])
                account = self._account(data["account"])
            except (KeyError, TypeError, ValueError):
                raise self._http.unexpected(request.route) from None
        if account.stark_key != stark.public_key:
            raise DydxError(
                f"dYdX's account for {address} has STARK key {hex(account.stark_key)}, "
                f"not {stark.public_key_hex}",
                route=request.route,
            )
        return account, creds

    # ---- private (API key)

    def get_account(self, address: str, creds: ApiCredentials) -> OnboardedAccount:
        path = "/v3/accounts/" + dydx_wire.account_id(address)
        request = self._private("GET", path, "GET /v3/accounts/:id", address, creds)
        data = self._http.call(request, idempotent=True)
        try:
            return self._account(data["account"])
        except (KeyError, TypeError, ValueError):
            raise self._http.unexpected(request.route) from None

    def list_api_keys(self, address: str, creds: ApiCredentials) -> frozenset[str]:
        request = self._private("GET", "/v3/api-keys", "GET /v3/api-keys", address, creds)
        data = self._http.call(request, idempotent=True)
        entries = data.get("apiKeys")
        if not isinstance(entries, list):
            raise self._http.unexpected(request.route)
        keys = set()
        for entry in entries:  # v3 documented bare strings; its clients read {"key": ...}
            key = entry.get("key") if isinstance(entry, dict) else entry
            if not isinstance(key, str):
                raise self._http.unexpected(request.route)
            keys.add(key)
        return frozenset(keys)

    def registration_signature(self, address: str, creds: ApiCredentials) -> str:
        """The operator's signature for L1 ``registerUser``: 0x + 130 hex."""
        request = self._private("GET", "/v3/registration", "GET /v3/registration", address, creds)
        signature = self._http.call(request, idempotent=True).get("signature")
        if not isinstance(signature, str) or not _SIGNATURE_RE.fullmatch(signature):
            raise self._http.unexpected(request.route)
        return signature

    # ---- private (Ethereum key)

    def create_api_key(self, signer: EthSigner) -> ApiCredentials:
        """POST /v3/api-keys. Never repeated after an ambiguous failure (timeout, dropped
        connection, 5xx): v3 makes a random key each time, so a blind retry could leave an
        unrecorded key behind. The caller recovers by listing the keys and comparing."""
        request = self._eth_private(signer, "POST", "/v3/api-keys", "POST /v3/api-keys")
        data = self._http.call(request, idempotent=False)
        try:
            api = data["apiKey"]
            return self._credentials(api["key"], api["secret"], api["passphrase"])
        except (KeyError, TypeError):
            raise self._http.unexpected(request.route) from None

    def delete_api_key(self, signer: EthSigner, key: str, *, default_key: str) -> None:
        """DELETE /v3/api-keys. Refuses the default key: once deleted it can never be listed again.

        Repeated after an ambiguous failure; a "not found" after one means our first attempt worked.
        """
        if key.strip().lower() == default_key.strip().lower():
            raise ProvisionerError(
                f"refusing to delete API key {key} of {signer.address}: it is the default key, "
                "which dYdX's web app needs and which can never be created again"
            )
        path = dydx_wire.query_path("/v3/api-keys", {"apiKey": key})
        request = self._eth_private(signer, "DELETE", path, "DELETE /v3/api-keys")
        was_ambiguous = False

        def attempt() -> None:
            nonlocal was_ambiguous
            try:
                self._http.attempt(request)
            except DydxError as error:
                if was_ambiguous and error.status == 404:
                    return  # gone: our earlier, unanswered attempt deleted it
                was_ambiguous = was_ambiguous or error.ambiguous
                raise
            except Exception as error:
                was_ambiguous = was_ambiguous or classify(error)[0] is Retryability.IF_IDEMPOTENT
                raise

        self._http.with_retry(request.route, attempt, idempotent=True)

    # ---- request building

    def _private(
        self, method: str, path: str, route: str, address: str, creds: ApiCredentials
    ) -> Request:
        self._redactor.register(creds.secret)
        self._redactor.register(creds.passphrase)

        def headers() -> dict[str, str]:
            timestamp = dydx_wire.now_iso()
            try:
                signature = dydx_wire.hmac_signature(creds.secret, timestamp, method, path)
            except (binascii.Error, ValueError):
                raise DydxError(
                    f"the secret of API key {creds.key} is not valid base64url", route=route
                ) from None
            return {
                "DYDX-SIGNATURE": signature,
                "DYDX-API-KEY": creds.key,
                "DYDX-TIMESTAMP": timestamp,
                "DYDX-PASSPHRASE": creds.passphrase,
            }

        return Request(method, path, route, address, headers)

    def _eth_private(self, signer: EthSigner, method: str, path: str, route: str) -> Request:
        from provisioner.clients import dydx_eth

        adapter = dydx_eth.Dydx3Signer(signer, self._redactor)
        address = signer.address

        def headers() -> dict[str, str]:
            timestamp = dydx_wire.now_iso()
            signature = dydx_eth.eth_private_signature(
                adapter,
                self.network_id,
                address,
                method=method,
                request_path=path,
                body="{}",
                timestamp=timestamp,
            )
            return {
                "DYDX-SIGNATURE": signature,
                "DYDX-TIMESTAMP": timestamp,
                "DYDX-ETHEREUM-ADDRESS": address,
            }

        return Request(method, path, route, address, headers, "{}")

    # ---- results

    def _stark_pair(self, private_key: int) -> StarkKeyPair:
        for form in (hex(private_key), f"{private_key:064x}", str(private_key)):
            self._redactor.register(form)
        return StarkKeyPair.from_private_key(private_key)

    def _default_credentials(self, signer: Any, address: str) -> ApiCredentials:
        from provisioner.clients import dydx_eth

        recovered = dydx_eth.default_credentials(signer, self.network_id, address)
        return self._credentials(recovered["key"], recovered["secret"], recovered["passphrase"])

    def _credentials(self, key: object, secret: object, passphrase: object) -> ApiCredentials:
        if not all(isinstance(v, str) and v for v in (key, secret, passphrase)):
            raise TypeError("incomplete API key")
        self._redactor.register(secret)
        self._redactor.register(passphrase)
        return ApiCredentials(key=str(key), secret=str(secret), passphrase=str(passphrase))

    @staticmethod
    def _account(data: Mapping[str, Any]) -> OnboardedAccount:
        return OnboardedAccount(
            account_id=str(data["id"]),
            position_id=int(data["positionId"]),
            stark_key=int(str(data["starkKey"]), 16),
        )
