"""The dYdX v3 API client the reconciler uses: dydx3 signs and derives, we send.

dydx3 computes every EIP-712 message, digest, HMAC and derived key; this module only
adapts our ``EthSigner`` to it and does the HTTP itself, through one pooled session,
the rate limiter and the retry policy (dydx3 sends through a process-wide session
with neither). Every secret that passes through (STARK private key, API secrets and
passphrases, and the two signatures they are derived from) is registered with the
redactor before anything else can print it.

(dydx3 imports safely here: this module is inside the ``provisioner`` package, whose
``__init__`` applies the Python 3.11 fix first.)
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
from dydx3.constants import (
    OFF_CHAIN_KEY_DERIVATION_ACTION,
    OFF_CHAIN_ONBOARDING_ACTION,
    SIGNATURE_TYPE_NO_PREPEND,
)
from dydx3.eth_signing import SignEthPrivateAction, SignOnboardingAction
from dydx3.eth_signing import util as eth_util
from dydx3.helpers.db import get_account_id
from dydx3.helpers.request_helpers import (
    generate_now_iso,
    generate_query_path,
    json_stringify,
)
from dydx3.modules.onboarding import Onboarding
from dydx3.modules.private import Private
from dydx3.starkex.helpers import private_key_to_public_key_pair_hex

from provisioner import __version__
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
        x, y = private_key_to_public_key_pair_hex(hex(private_key))
        return cls(private_key=private_key, public_key=int(x, 16), public_key_y=int(y, 16))

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


class _Dydx3Signer:
    """dydx3's signer interface over our ``EthSigner``: dydx3 builds the typed data, ours signs.

    Each signature is checked against dydx3's own digest, so a signer that signs
    something else (another key, another EIP-712 encoding) fails here instead of
    yielding a wrong STARK key.
    """

    def __init__(self, signer: EthSigner, redactor: Redactor) -> None:
        self._signer = signer
        self._redactor = redactor
        self.signatures: list[str] = []

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
        self.signatures.append(typed)
        return typed


class _Replay:
    """A dydx3 signer that answers with a signature we already hold for the same message."""

    def __init__(self, typed_signature: str) -> None:
        self._typed = typed_signature

    def sign(
        self, eip712_message: dict[str, Any], message_hash: Any, opt_signer_address: str | None
    ) -> str:
        return self._typed


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
        path = generate_query_path("/v3/users/exists", {"ethereumAddress": address})
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
        adapter = _Dydx3Signer(signer, self._redactor)
        onboarding = self._dydx3_onboarding(adapter, signer.address)
        first = onboarding.derive_stark_key(ethereum_address=signer.address)
        pair = self._stark_pair(first)
        if check_deterministic:
            # The key is a hash of the signature: comparing a second signature is the whole
            # check (deriving from it too cost a second STARK-curve multiplication, ~40 ms).
            onboarding.signer.sign(signer.address, action=OFF_CHAIN_KEY_DERIVATION_ACTION)
            if adapter.signatures[0] != adapter.signatures[-1]:
                raise NonDeterministicSigner(
                    f"the signer of {signer.address} gave two different signatures for the same "
                    "message, so a STARK key derived from it could never be derived again; use a "
                    "deterministic (RFC 6979) signer, or import the STARK key pair instead"
                )
        return pair

    def recover_default_credentials(self, signer: EthSigner) -> ApiCredentials:
        """The default API key, derived from the "dYdX Onboarding" signature as dYdX did."""
        adapter = _Dydx3Signer(signer, self._redactor)
        return self._default_credentials(adapter, signer.address)

    # ---- onboarding

    def onboard(
        self, signer: EthSigner, stark: StarkKeyPair
    ) -> tuple[OnboardedAccount, ApiCredentials]:
        """POST /v3/onboarding. An ambiguous failure (timeout, 5xx) is resolved by asking whether
        the user exists: if dYdX created it, its account is read back with the default key derived
        from our onboarding signature; if not, the request is repeated."""
        address = signer.address
        adapter = _Dydx3Signer(signer, self._redactor)
        signature = SignOnboardingAction(adapter, self.network_id).sign(
            address, action=OFF_CHAIN_ONBOARDING_ACTION
        )
        body = json_stringify(
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
                conflict = isinstance(error, DydxError) and error.status == 409
                if verdict is not Retryability.IF_IDEMPOTENT and not (conflict and was_ambiguous):
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
            creds = self._default_credentials(_Replay(signature), address)
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
        path = "/v3/accounts/" + get_account_id(address)
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
        path = generate_query_path("/v3/api-keys", {"apiKey": key})
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
        private = Private(
            host=self.api_url,
            network_id=self.network_id,
            stark_private_key=None,
            default_address=address,
            api_timeout=self._timeout,
            api_key_credentials=creds.as_dydx3(),
        )

        def headers() -> dict[str, str]:
            timestamp = generate_now_iso()
            try:
                signature = private.sign(
                    request_path=path, method=method, iso_timestamp=timestamp, data={}
                )
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
        action = SignEthPrivateAction(_Dydx3Signer(signer, self._redactor), self.network_id)
        address = signer.address

        def headers() -> dict[str, str]:
            timestamp = generate_now_iso()
            signature = action.sign(
                address, method=method, request_path=path, body="{}", timestamp=timestamp
            )
            return {
                "DYDX-SIGNATURE": signature,
                "DYDX-TIMESTAMP": timestamp,
                "DYDX-ETHEREUM-ADDRESS": address,
            }

        return _Request(method, path, route, address, headers, "{}")

    def _dydx3_onboarding(self, signer: Any, address: str) -> Onboarding:
        return Onboarding(
            host=self.api_url,
            eth_signer=signer,
            network_id=self.network_id,
            default_address=address,
            api_timeout=self._timeout,
        )

    # ---- results

    def _stark_pair(self, derived: Mapping[str, str]) -> StarkKeyPair:
        private_key = int(derived["private_key"], 16)
        for form in (hex(private_key), f"{private_key:064x}", str(private_key)):
            self._redactor.register(form)
        return StarkKeyPair(
            private_key=private_key,
            public_key=int(derived["public_key"], 16),
            public_key_y=int(derived["public_key_y_coordinate"], 16),
        )

    def _default_credentials(self, signer: Any, address: str) -> ApiCredentials:
        recovered = self._dydx3_onboarding(signer, address).recover_default_api_key_credentials(
            ethereum_address=address
        )
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
