"""The dYdX v3 API client the reconciler uses: dydx3 builds what the Ethereum key signs, we send.

dydx3 computes every EIP-712 message and digest and the derivations from signatures
(``dydx_eth``, imported only when an Ethereum signature is needed); HMAC signatures,
paths and ids (``dydx_wire``) and STARK public keys (``stark_curve``) are computed here,
held to dydx3 by the tests. This module does the HTTP itself, through one pooled
transport, the rate limiter and the retry policy (dydx3 sends through a process-wide
session with neither). Every secret that passes through (STARK private key, API
secrets and passphrases, and the two signatures they are derived from) is registered
with the redactor before anything else can print it.
"""

from __future__ import annotations

import binascii
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from provisioner import __version__
from provisioner.clients import dydx_wire, stark_curve
from provisioner.clients.http import HttpResponse, HttpTransport
from provisioner.clients.ratelimit import Bucket, RateLimiter
from provisioner.clients.retry import Retryability, RetryPolicy, classify
from provisioner.errors import ProvisionerError
from provisioner.redact import Redactor
from provisioner.signers.base import EthSigner

Log = Callable[[str], None]

_SIGNATURE_RE = re.compile(r"0x[0-9a-fA-F]{130}")
_MAX_ERROR_TEXT = 200


class DydxError(ProvisionerError):
    """dYdX refused or could not be reached. ``status`` is None when no HTTP answer came back."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        msg: str | None = None,
        route: str = "",
        retry_after: float | None = None,
        retry_at: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.msg = msg
        self.route = route
        self.retry_after = retry_after  # seconds, from v3's Retry-After (sent in ms)
        self.retry_at = retry_at  # epoch seconds, from RateLimit-Reset (sent in epoch ms)
        self.ambiguous = ambiguous  # the request may have taken effect


class AlreadyOnboarded(DydxError):
    """POST /v3/onboarding answered 409: dYdX already has a user for the address."""


class NonDeterministicSigner(ProvisionerError):
    """The signer gave two different signatures for one message: keys derived from it are unrecoverable."""


class SignatureMismatch(ProvisionerError):
    """The signer's signature does not recover to its address for dydx3's digest."""


@dataclass(frozen=True)
class StarkKeyPair:
    private_key: int = field(repr=False)
    public_key: int
    public_key_y: int

    @classmethod
    def from_private_key(cls, private_key: int) -> StarkKeyPair:
        x, y = stark_curve.public_key(private_key)
        return cls(private_key=private_key, public_key=x, public_key_y=y)

    def __repr__(self) -> str:
        return (
            f"StarkKeyPair(public_key={self.public_key_hex}, public_key_y={self.public_key_y_hex})"
        )

    @property
    def private_key_hex(self) -> str:
        return hex(self.private_key)

    @property
    def public_key_hex(self) -> str:
        return hex(self.public_key)

    @property
    def public_key_y_hex(self) -> str:
        return hex(self.public_key_y)


@dataclass(frozen=True)
class ApiCredentials:
    key: str
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)

    def as_dydx3(self) -> dict[str, str]:
        """The ``api_key_credentials`` dict dydx3.Client takes."""
        return {"key": self.key, "secret": self.secret, "passphrase": self.passphrase}


@dataclass(frozen=True)
class OnboardedAccount:
    account_id: str
    position_id: int
    stark_key: int


@dataclass(frozen=True)
class _Request:
    method: str
    path: str  # starts with /v3/, query included, exactly as signed
    route: str  # the path's template, for stats and messages: "GET /v3/accounts/:id"
    account: str | None  # whose rate-limit budget it spends; None for public endpoints
    headers: Callable[[], dict[str, str]]  # called per attempt: signatures carry a timestamp
    body: str | None = None


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
        log: Log | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.network_id = int(network_id)
        self._redactor = redactor
        self._retry = retry
        self._limiter = limiter
        self._raw_log = log
        self._timeout = timeout
        self._stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._http = HttpTransport(
            self.api_url,
            headers={
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": f"dydx-provisioner/{__version__}",
            },
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DydxClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def stats(self) -> dict[str, int]:
        """HTTP requests sent so far (retries included), by route: ``{"GET /v3/users/exists": 2}``."""
        with self._stats_lock:
            return dict(self._stats)

    @property
    def request_count(self) -> int:
        with self._stats_lock:
            return sum(self._stats.values())

    # ---- public

    def user_exists(self, address: str) -> bool:
        path = dydx_wire.query_path("/v3/users/exists", {"ethereumAddress": address})
        data = self._call(
            _Request("GET", path, "GET /v3/users/exists", None, dict), idempotent=True
        )
        exists = data.get("exists")
        if not isinstance(exists, bool):
            raise self._unexpected("GET /v3/users/exists")
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
        request = _Request(
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
                return self._attempt(request)
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
                self._log(
                    f"dYdX POST /v3/onboarding for {address}: {reason}; checking whether the user exists"
                )
                if self.user_exists(address):
                    return None
                raise  # nothing was created: repeating is harmless

        data = self._with_retry(request.route, attempt, idempotent=True)
        if data is None:
            self._log(
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
                raise self._unexpected(request.route) from None
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
        data = self._call(request, idempotent=True)
        try:
            return self._account(data["account"])
        except (KeyError, TypeError, ValueError):
            raise self._unexpected(request.route) from None

    def list_api_keys(self, address: str, creds: ApiCredentials) -> frozenset[str]:
        request = self._private("GET", "/v3/api-keys", "GET /v3/api-keys", address, creds)
        data = self._call(request, idempotent=True)
        entries = data.get("apiKeys")
        if not isinstance(entries, list):
            raise self._unexpected(request.route)
        keys = set()
        for entry in entries:  # v3 documented bare strings; its clients read {"key": ...}
            key = entry.get("key") if isinstance(entry, dict) else entry
            if not isinstance(key, str):
                raise self._unexpected(request.route)
            keys.add(key)
        return frozenset(keys)

    def registration_signature(self, address: str, creds: ApiCredentials) -> str:
        """The operator's signature for L1 ``registerUser``: 0x + 130 hex."""
        request = self._private("GET", "/v3/registration", "GET /v3/registration", address, creds)
        signature = self._call(request, idempotent=True).get("signature")
        if not isinstance(signature, str) or not _SIGNATURE_RE.fullmatch(signature):
            raise self._unexpected(request.route)
        return signature

    # ---- private (Ethereum key)

    def create_api_key(self, signer: EthSigner) -> ApiCredentials:
        """POST /v3/api-keys. Never repeated after an ambiguous failure (timeout, dropped
        connection, 5xx): v3 makes a random key each time, so a blind retry could leave an
        unrecorded key behind. The caller recovers by listing the keys and comparing."""
        request = self._eth_private(signer, "POST", "/v3/api-keys", "POST /v3/api-keys")
        data = self._call(request, idempotent=False)
        try:
            api = data["apiKey"]
            return self._credentials(api["key"], api["secret"], api["passphrase"])
        except (KeyError, TypeError):
            raise self._unexpected(request.route) from None

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
                self._attempt(request)
            except DydxError as error:
                if was_ambiguous and error.status == 404:
                    return  # gone: our earlier, unanswered attempt deleted it
                was_ambiguous = was_ambiguous or error.ambiguous
                raise
            except Exception as error:
                was_ambiguous = was_ambiguous or classify(error)[0] is Retryability.IF_IDEMPOTENT
                raise

        self._with_retry(request.route, attempt, idempotent=True)

    # ---- request building

    def _private(
        self, method: str, path: str, route: str, address: str, creds: ApiCredentials
    ) -> _Request:
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

        return _Request(method, path, route, address, headers)

    def _eth_private(self, signer: EthSigner, method: str, path: str, route: str) -> _Request:
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

        return _Request(method, path, route, address, headers, "{}")

    # ---- results

    def _stark_pair(self, private_key: int) -> StarkKeyPair:
        for form in (hex(private_key), f"{private_key:064x}", str(private_key)):
            self._redactor.register(form)
        return StarkKeyPair.from_private_key(private_key)

    def _default_credentials(self, signer: Any, address: str) -> ApiCredentials:
        from provisioner.clients import dydx_eth

        recovered = dydx_eth.default_credentials(signer, self.network_id, address, self.api_url)
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

    def _unexpected(self, route: str) -> DydxError:
        return DydxError(f"dYdX {route}: unexpected answer", route=route)

    # ---- HTTP

    def _log(self, message: str) -> None:
        if self._raw_log is not None:
            self._raw_log(self._redactor.redact(message))

    def _call(self, request: _Request, *, idempotent: bool) -> dict[str, Any]:
        result = self._with_retry(
            request.route, lambda: self._attempt(request), idempotent=idempotent
        )
        assert result is not None
        return result

    def _with_retry(self, route: str, fn: Callable[[], Any], *, idempotent: bool) -> Any:
        try:
            return self._retry.call(
                fn, idempotent=idempotent, describe=f"dYdX {route}", log=self._log
            )
        except requests.RequestException as error:
            verdict, reason = classify(error)
            raise DydxError(
                f"dYdX {route}: {reason} at {self.api_url}",
                route=route,
                ambiguous=verdict is Retryability.IF_IDEMPOTENT,
            ) from None

    def _attempt(self, request: _Request) -> dict[str, Any]:
        """One HTTP exchange. Transport errors propagate as requests' own, for the retry policy."""
        bucket = Bucket.of(request.method, request.account)
        with self._limiter.slot(bucket, log=self._log) as slot:
            headers = request.headers()  # after any wait: timestamps must be fresh
            slot.sending()  # signing may have taken long (remote signers): count from now
            with self._stats_lock:
                self._stats[request.route] += 1
            response = self._http.request(
                request.method,
                self.api_url + request.path,
                body=request.body,
                headers=headers,
                timeout=self._timeout,
            )
            slot.observe(response.headers)
        if not 200 <= response.status_code < 300:
            raise self._http_error(request.route, response)
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            raise self._unexpected(request.route) from None
        if not isinstance(data, dict):
            raise self._unexpected(request.route)
        return data

    def _http_error(self, route: str, response: HttpResponse) -> DydxError:
        status = response.status_code
        msg = _error_message(response)
        text = self._redactor.redact(f"dYdX {route}: {status} {msg}".rstrip())
        retry_after = _int(response.headers.get("Retry-After"))
        reset = _int(response.headers.get("RateLimit-Reset")) if status == 429 else None
        return DydxError(
            text,
            status=status,
            msg=self._redactor.redact(msg),
            route=route,
            retry_after=None if retry_after is None else retry_after / 1000,
            retry_at=None if reset is None else reset / 1000,
            ambiguous=status >= 500,
        )


def _error_message(response: HttpResponse) -> str:
    """v3's ``errors[].msg``; otherwise a short, single-line piece of the body (Cloudflare answers HTML)."""
    try:
        errors = response.json().get("errors")
        messages = [str(e["msg"]) for e in errors if isinstance(e, dict) and "msg" in e]
        if messages:
            return "; ".join(messages)[:_MAX_ERROR_TEXT]
    except (ValueError, AttributeError, TypeError):
        pass
    text = " ".join(response.text.split())
    return text[:_MAX_ERROR_TEXT] or (response.reason or "")


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
