"""Logging in to Vault (token, AppRole, JWT, Kubernetes) and keeping the token alive."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import hvac

from provisioner.clients.vault.adapter import TransportAdapter
from provisioner.clients.vault.errors import VaultError
from provisioner.errors import ProvisionerError
from provisioner.manifest.model import SecretRef, VaultSpec
from provisioner.redact import Redactor

DEFAULT_TOKEN_REF = SecretRef("env", "VAULT_TOKEN")
KUBERNETES_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
REFRESH_MARGIN_SECONDS = 300.0  # renew when less than this (or a third of the TTL) is left


class SecretSource(Protocol):
    """Where login credentials come from (``provisioner.secrets.SecretResolver``)."""

    def resolve(self, ref: SecretRef) -> str: ...


Calls = Callable[..., AbstractContextManager[None]]


@dataclass(frozen=True)
class _Lease:
    """When the current token runs out, by the client's clock; ``expires_at`` None: it never does."""

    expires_at: float | None
    ttl: float
    renewable: bool

    @classmethod
    def starting(cls, now: float, ttl: float, renewable: bool) -> _Lease:
        return cls(expires_at=now + ttl if ttl > 0 else None, ttl=ttl, renewable=renewable)

    def remaining(self, now: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - now

    @property
    def margin(self) -> float:
        return min(REFRESH_MARGIN_SECONDS, self.ttl / 3)


class TokenKeeper:
    """Holds the token on the adapter; ``calls(action, login=...)`` translates errors."""

    def __init__(
        self,
        spec: VaultSpec,
        hvac_client: hvac.Client,
        adapter: TransportAdapter,
        resolver: SecretSource,
        redactor: Redactor,
        *,
        clock: Callable[[], float],
        calls: Calls,
    ) -> None:
        self._spec = spec
        self._address = spec.address.rstrip("/")
        self._hvac = hvac_client
        self._adapter = adapter
        self._resolver = resolver
        self._redactor = redactor
        self._clock = clock
        self._calls = calls
        self._lease = _Lease(expires_at=None, ttl=0, renewable=False)
        self._lock = threading.Lock()

    def login(self) -> None:
        with self._lock:
            self._login()

    def _login(self) -> None:
        auth = self._spec.auth
        method = auth.method
        if method == "token":
            ref = auth.token or DEFAULT_TOKEN_REF
            token = self._credential(ref, "token login")
            self._adapter.token = token
            with self._calls(f"token from {ref.describe()}", login=True):
                info = self._hvac.auth.token.lookup_self()["data"]
            now = self._clock()
            self._lease = _Lease.starting(
                now, float(info.get("ttl") or 0), bool(info.get("renewable"))
            )
            return
        mount = (auth.mount_path or method).strip("/")
        what = f"{method} login at auth/{mount}"
        if not auth.role:
            raise VaultError(f"Vault at {self._address}: {what}: vault.auth.role is required")
        if method == "approle":
            secret_id = self._credential(auth.secret_id, what) if auth.secret_id else None
            with self._calls(what, login=True):
                response = self._hvac.auth.approle.login(
                    role_id=auth.role, secret_id=secret_id, use_token=False, mount_point=mount
                )
        elif method in ("jwt", "kubernetes"):
            jwt_ref = auth.jwt or (
                SecretRef("file", KUBERNETES_TOKEN_FILE) if method == "kubernetes" else None
            )
            if jwt_ref is None:
                raise VaultError(f"Vault at {self._address}: {what}: vault.auth.jwt is required")
            jwt = self._credential(jwt_ref, what)
            with self._calls(what, login=True):
                if method == "jwt":
                    response = self._hvac.auth.jwt.jwt_login(
                        role=auth.role, jwt=jwt, use_token=False, path=mount
                    )
                else:
                    response = self._hvac.auth.kubernetes.login(
                        role=auth.role, jwt=jwt, use_token=False, mount_point=mount
                    )
        else:
            raise VaultError(f"Vault at {self._address}: unknown auth method {method!r}")
        self._take_login(response, what)

    def _credential(self, ref: SecretRef, what: str) -> str:
        try:
            return self._resolver.resolve(ref)
        except ProvisionerError as exc:
            raise VaultError(f"Vault at {self._address}: {what}: {exc}") from None

    def _take_login(self, response: Any, what: str) -> None:
        auth = response.get("auth") if isinstance(response, dict) else None
        token = auth.get("client_token") if isinstance(auth, dict) else None
        if not isinstance(auth, dict) or not token:
            raise VaultError(f"Vault at {self._address}: {what}: the response carried no token")
        self._redactor.register(token)
        self._adapter.token = token
        self._lease = _Lease.starting(
            self._clock(), float(auth.get("lease_duration") or 0), bool(auth.get("renewable"))
        )

    def ensure_fresh(self) -> None:
        """Renew the token, or log in again, when little of its TTL is left; no request while
        it has time left."""
        with self._lock:
            lease = self._lease
            remaining = lease.remaining(self._clock())
            if remaining is None or remaining > lease.margin:
                return
            if lease.renewable and self._renew(lease.margin):
                return
            if self._spec.auth.method != "token":
                self._login()
                return
            if remaining <= 0:
                raise VaultError(
                    f"Vault at {self._address}: the token has expired and cannot be renewed; "
                    "log in again and rerun"
                )

    def _renew(self, margin: float) -> bool:
        """True when renewal bought more than ``margin`` seconds (a max TTL may cap it)."""
        try:
            with self._calls("token renewal"):
                auth = self._hvac.auth.token.renew_self()["auth"]
        except VaultError:
            return False
        ttl = float(auth.get("lease_duration") or 0)
        self._lease = _Lease.starting(self._clock(), ttl, bool(auth.get("renewable")))
        return ttl == 0 or ttl > margin
