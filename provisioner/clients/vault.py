"""The Vault client: login, KV v2 reads and owned writes, the tool's own state, capability checks.

The only module that talks to Vault. Every secret value it sees is registered
with the Redactor before it can reach output, and every error it raises is one
line naming the address and what failed, never a token or a secret.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

import hvac
import hvac.adapters
import hvac.exceptions as hvac_exc
import hvac.utils
import requests

from provisioner.clients.http import HttpTransport, ca_bundle_from_env, pooled_session
from provisioner.content_metadata import (
    content_metadata,
    recorded_content,
    without_content_keys,
)
from provisioner.errors import ProvisionerError
from provisioner.facts import MANAGED_BY, VaultEntry
from provisioner.manifest.model import SecretRef, VaultSpec
from provisioner.redact import Redactor

if TYPE_CHECKING:
    from provisioner.secrets import SecretResolver

T = TypeVar("T")

SECRET_FIELDS = frozenset({"private_key", "secret", "passphrase"})
META_MANAGED_BY = "managed-by"
META_ACCOUNT = "account"
DEFAULT_TOKEN_REF = SecretRef("env", "VAULT_TOKEN")
KUBERNETES_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
REFRESH_MARGIN_SECONDS = 300.0  # renew when less than this (or a third of the TTL) is left
_CAPABILITY_PATHS_PER_REQUEST = 400  # OpenBao refuses JSON bodies of > 1,000 strings


class VaultError(ProvisionerError):
    """Vault refused or could not be reached. The message is one line with no secret in it."""


class CasConflict(VaultError):
    """The path changed since it was read: its version is not the one the write expected."""


class ForeignSecret(VaultError):
    """The path holds data this tool did not write for this account; it is never overwritten."""


@dataclass(frozen=True)
class SecretRecord:
    """One KV v2 read: the fact (no secret values) and the data itself, kept out of repr."""

    entry: VaultEntry
    data: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class MetadataRecord:
    """One metadata read: the fact, and whether apply's record describes the current version."""

    entry: VaultEntry
    described: bool


class Retrier(Protocol):
    """What ``provisioner.clients.retry.RetryPolicy`` offers; only idempotent calls go through it."""

    def call(self, fn: Callable[[], T], *, idempotent: bool, describe: str) -> T: ...


class _CountingAdapter(hvac.adapters.JSONAdapter):
    """hvac's adapter, counting every HTTP request by kind: the seam behind ``VaultClient.stats``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pooled_session(self.base_uri, session=self.session)
        bundle = ca_bundle_from_env()
        if bundle and self._kwargs.get("verify") is True:  # hvac passes verify on every request
            self._kwargs["verify"] = bundle
        self._http = HttpTransport(
            self.base_uri, verify=self._kwargs.get("verify", True), cert=self._kwargs.get("cert")
        )
        self._counts = {"reads": 0, "writes": 0, "auth": 0}
        self._count_lock = threading.Lock()

    def get_json(self, api_path: str) -> Any:
        """GET ``api_path`` as hvac's JSON adapter would (same headers, same exceptions), sent
        through the lean transport: the secret reads are most of a plan's requests."""
        return self.send_json("GET", api_path)

    def send_json(self, method: str, api_path: str, body: Mapping[str, Any] | None = None) -> Any:
        """``method`` ``api_path`` with a JSON body, as hvac's JSON adapter sends it, through the
        lean transport (hvac's own path through requests cost apply a millisecond per write).
        The decoded answer, None for 204."""
        url = self.urljoin(self.base_uri, api_path)
        headers = {"X-Vault-Request": "true"} if self.request_header else {}
        if self.token:
            headers["X-Vault-Token"] = self.token
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        if body is not None:
            headers["Content-Type"] = "application/json"
        with self._count_lock:
            self._counts["reads" if method == "GET" else "writes"] += 1
        response = self._http.request(
            method,
            url,
            body=None if body is None else json.dumps(body),
            headers=headers,
            timeout=float(self._kwargs.get("timeout") or 30),
        )
        if response.status_code >= 400:
            self._raise_for_error(method, url, response)
        return response.json() if response.content else None

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        api_path = urlsplit(url).path.lstrip("/").removeprefix("v1/")
        if api_path.startswith("auth/"):
            kind = "auth"
        elif method.upper() in ("GET", "LIST", "HEAD") or api_path.startswith("sys/capabilities"):
            kind = "reads"
        else:
            kind = "writes"
        with self._count_lock:
            self._counts[kind] += 1
        return super().request(method, url, *args, **kwargs)

    def snapshot(self) -> dict[str, int]:
        with self._count_lock:
            return dict(self._counts)


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


@dataclass(frozen=True)
class _Current:
    """What one GET of ``<mount>/data/<path>`` said, before it becomes a VaultEntry."""

    data: dict[str, Any] | None  # None: no live current version
    version: int
    custom_metadata: dict[str, str]


class VaultClient:
    def __init__(
        self,
        spec: VaultSpec,
        resolver: SecretResolver,
        redactor: Redactor,
        *,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        retry: Retrier | None = None,
        revoke_on_close: bool = True,
    ) -> None:
        """Prefer ``connect``, which also logs in. ``revoke_on_close``: ``close`` revokes a token
        this client obtained by logging in (never one it was given)."""
        self.spec = spec
        self.address = spec.address.rstrip("/")
        self.mount = spec.mount.strip("/")
        self._resolver = resolver
        self._redactor = redactor
        self._timeout = timeout
        self._clock = clock
        self._retry = retry
        # token="" keeps hvac from picking VAULT_TOKEN or ~/.vault-token up behind our back
        self._hvac = hvac.Client(
            url=self.address,
            token="",
            timeout=timeout,
            namespace=spec.namespace,
            adapter=_CountingAdapter,
        )
        self._adapter: _CountingAdapter = self._hvac.adapter
        self._kv = self._hvac.secrets.kv.v2
        self._lease = _Lease(expires_at=None, ttl=0, renewable=False)
        self._auth_lock = threading.Lock()
        self._revoke_on_close = revoke_on_close
        self._logged_in = False  # the token came from a login of ours, so it is ours to revoke

    @classmethod
    def connect(
        cls,
        spec: VaultSpec,
        resolver: SecretResolver,
        redactor: Redactor,
        *,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        retry: Retrier | None = None,
        revoke_on_close: bool = True,
    ) -> VaultClient:
        """A client logged in per ``spec.auth``; VaultError if Vault is unreachable or refuses."""
        client = cls(
            spec,
            resolver,
            redactor,
            timeout=timeout,
            clock=clock,
            retry=retry,
            revoke_on_close=revoke_on_close,
        )
        with client._auth_lock:
            client._login()
        return client

    # -- counting ------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """HTTP requests made so far: ``reads``, ``writes`` (secrets, metadata, state) and ``auth``."""
        return self._adapter.snapshot()

    # -- login and token lifetime --------------------------------------------------------

    def _login(self) -> None:
        auth = self.spec.auth
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
            raise VaultError(f"Vault at {self.address}: {what}: vault.auth.role is required")
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
                raise VaultError(f"Vault at {self.address}: {what}: vault.auth.jwt is required")
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
            raise VaultError(f"Vault at {self.address}: unknown auth method {method!r}")
        self._take_login(response, what)

    def _credential(self, ref: SecretRef, what: str) -> str:
        """Read from its source at every login: a CI job's or a pod's token is rotated under a
        long run, and the one read at start may have expired."""
        try:
            return self._resolver.resolve(ref, fresh=True)
        except ProvisionerError as exc:
            raise VaultError(f"Vault at {self.address}: {what}: {exc}") from None

    def _take_login(self, response: Any, what: str) -> None:
        auth = response.get("auth") if isinstance(response, dict) else None
        token = auth.get("client_token") if isinstance(auth, dict) else None
        if not isinstance(auth, dict) or not token:
            raise VaultError(f"Vault at {self.address}: {what}: the response carried no token")
        self._redactor.register(token)
        self._adapter.token = token
        self._logged_in = True
        self._lease = _Lease.starting(
            self._clock(), float(auth.get("lease_duration") or 0), bool(auth.get("renewable"))
        )

    def close(self) -> None:
        """The end of the run: revoke the token a login gave us, unless told to keep it.

        A token the caller handed over (method ``token``) is theirs and is never revoked.
        Best effort: the run's outcome does not hang on it, and the token expires anyway.
        """
        with self._auth_lock:
            if not (self._logged_in and self._revoke_on_close and self._adapter.token):
                return
            try:
                with self._calls("revoking the login token"):
                    self._adapter.send_json("POST", "/v1/auth/token/revoke-self", {})
            except VaultError:
                return
            finally:
                self._logged_in = False
            self._adapter.token = ""

    def ensure_fresh_token(self) -> None:
        """Renew the token, or log in again, when little of its TTL is left.

        Called before every read and write: a long run can outlive the token it started
        with. Costs no request while the token has time left.
        """
        with self._auth_lock:
            lease = self._lease
            remaining = lease.remaining(self._clock())
            if remaining is None or remaining > lease.margin:
                return
            if lease.renewable and self._renew(lease.margin):
                return
            if self.spec.auth.method != "token":
                self._login()
                return
            if remaining <= 0:
                raise VaultError(
                    f"Vault at {self.address}: the token has expired and cannot be renewed; "
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

    # -- secrets -------------------------------------------------------------------------

    def read(self, path: str) -> SecretRecord:
        """One GET of ``<mount>/data/<path>``: data and custom_metadata together."""
        path = _clean(path)
        return self._record(path, self._get_current(path))

    def read_metadata(self, path: str) -> MetadataRecord:
        """One GET of ``<mount>/metadata/<path>``, for a role that may read no secret's data.

        Whether the current version is live, who owns it, and, when apply's record in
        custom_metadata describes that very version, its fields and public values
        (``provisioner.content_metadata``). No secret value is read, so none is registered.
        """
        path = _clean(path)
        where = f"{self.mount}/{path}"
        self.ensure_fresh_token()
        try:
            with self._calls(f"reading the metadata of {where}"):
                response = self._idempotent(
                    lambda: self._adapter.get_json(self._url("metadata", path)),
                    f"read metadata {path}",
                )
        except _NotFound:
            return MetadataRecord(VaultEntry(path=path, exists=False), described=False)
        meta = response.get("data") or {}
        version = int(meta.get("current_version") or 0)
        state = (meta.get("versions") or {}).get(str(version)) or {}
        exists = version > 0 and not state.get("deletion_time") and not state.get("destroyed")
        custom = {str(k): _text(v) for k, v in (meta.get("custom_metadata") or {}).items()}
        recorded = recorded_content(custom, version) if exists else None
        ours = custom.get(META_MANAGED_BY) == MANAGED_BY
        entry = VaultEntry(
            path=path,
            exists=exists,
            version=version,
            managed_by=custom.get(META_MANAGED_BY),
            account=custom.get(META_ACCOUNT),
            fields=recorded.fields if recorded is not None else frozenset(),
            public=recorded.public if recorded is not None and ours else (),
        )
        return MetadataRecord(entry, described=recorded is not None)

    def _record(self, path: str, current: _Current) -> SecretRecord:
        data = {k: _text(v) for k, v in current.data.items()} if current.data is not None else {}
        for name in SECRET_FIELDS & data.keys():
            self._redactor.register(data[name])
        meta = current.custom_metadata
        public: tuple[tuple[str, str], ...] = ()
        # Only our own layout says which fields are not secret: a foreign secret shows names only.
        if meta.get(META_MANAGED_BY) == MANAGED_BY:
            public = tuple(sorted((k, v) for k, v in data.items() if k not in SECRET_FIELDS))
        entry = VaultEntry(
            path=path,
            exists=current.data is not None,
            version=current.version,
            managed_by=meta.get(META_MANAGED_BY),
            account=meta.get(META_ACCOUNT),
            fields=frozenset(data),
            public=public,
        )
        return SecretRecord(entry=entry, data=MappingProxyType(data))

    def write_owned(
        self,
        path: str,
        data: Mapping[str, str],
        *,
        account: str,
        expected_version: int,
        current: VaultEntry | None = None,
    ) -> int:
        """Write a secret this tool owns: custom_metadata first, then the data with check-and-set.

        ``expected_version`` 0 means the path must hold no version yet. Returns the new
        version. A foreign secret is refused before its metadata is touched, judged from
        ``current`` (the entry the caller has just read) or else from one read here; the
        CAS on the data write is what guards against a writer in between.
        """
        path = _clean(path)
        for name in SECRET_FIELDS & data.keys():
            self._redactor.register(data[name])
        self.ensure_fresh_token()
        kept: Mapping[str, str] | None = None
        if current is None:
            found = self._get_current(path)
            current = self._record(path, found).entry
            kept = found.custom_metadata
        where = f"{self.mount}/{path}"
        if current.is_foreign(account):
            owner = (
                f"managed-by={current.managed_by!r}, account={current.account!r}"
                if current.managed_by
                else "no managed-by metadata"
            )
            raise ForeignSecret(
                f"Vault at {self.address}: {where} holds data not written by {MANAGED_BY} "
                f"for account {account} ({owner}); refusing to overwrite it"
            )
        if current.version != expected_version:
            raise _cas_conflict(self.address, where, expected_version, current.version)
        if kept is None:
            # custom_metadata is replaced as a whole: keep the keys others put there. A path
            # we never wrote (a caller's fresh read of it) has none; one of ours is read.
            kept = self._custom_metadata(path) if current.exists or current.version else {}
        # Ownership and the content record first, then the data with check-and-set: a crash
        # in between leaves a record ahead of the data (version N+1 described, N current),
        # which a metadata-only plan shows as work to do and the next apply redoes.
        owned = {**without_content_keys(kept), META_MANAGED_BY: MANAGED_BY, META_ACCOUNT: account}
        self._set_custom_metadata(
            path, {**owned, **content_metadata(data, SECRET_FIELDS, expected_version + 1)}
        )
        try:
            return self._put(path, dict(data), expected_version)
        except CasConflict:
            # someone else's write won: the record must not describe their version
            with contextlib.suppress(VaultError):
                self._set_custom_metadata(path, owned)
            raise

    def _custom_metadata(self, path: str) -> dict[str, str]:
        try:
            with self._calls(f"reading the metadata of {self.mount}/{path}"):
                response = self._idempotent(
                    lambda: self._adapter.get_json(self._url("metadata", path)),
                    f"read metadata {path}",
                )
        except _NotFound:
            return {}
        custom = (response.get("data") or {}).get("custom_metadata") or {}
        return {str(k): _text(v) for k, v in custom.items()}

    def _set_custom_metadata(self, path: str, custom: Mapping[str, str]) -> None:
        with self._calls(f"setting metadata on {self.mount}/{path}"):
            # what hvac's kv.v2.update_metadata sends, its default included
            self._adapter.send_json(
                "POST",
                self._url("metadata", path),
                {"delete_version_after": "0s", "custom_metadata": dict(custom)},
            )

    # -- the tool's own state (locks, journal) -------------------------------------------

    def read_state(self, path: str) -> tuple[dict[str, Any], int] | None:
        """(data, version); None if never written; ({}, version) if the current version was deleted."""
        current = self._get_current(_clean(path))
        if current.version == 0 and current.data is None:
            return None
        return (current.data or {}), current.version

    def write_state(self, path: str, data: Mapping[str, Any], cas: int) -> int:
        """Write with check-and-set (``cas`` 0: must not exist); CasConflict if someone got there first."""
        path = _clean(path)
        self.ensure_fresh_token()
        return self._put(path, dict(data), cas)

    def delete_state(self, path: str) -> None:
        """Delete the path's metadata and every version."""
        path = _clean(path)
        self.ensure_fresh_token()
        with self._calls(f"deleting {self.mount}/{path}"):
            self._adapter.send_json("DELETE", self._url("metadata", path))

    def list_state(self, prefix: str) -> list[str]:
        """Keys directly under ``prefix`` (sub-folders end in "/"); [] when there are none."""
        prefix = _clean(prefix)
        self.ensure_fresh_token()
        try:
            with self._calls(f"listing {self.mount}/{prefix}/"):
                response = self._idempotent(
                    lambda: self._kv.list_secrets(path=prefix, mount_point=self.mount),
                    f"list {prefix}",
                )
        except _NotFound:
            return []
        return [str(k) for k in response["data"]["keys"]]

    # -- capabilities ----------------------------------------------------------------------

    def data_path(self, path: str) -> str:
        """The API path of a secret's data, as ``missing_capabilities`` wants it."""
        return f"{self.mount}/data/{_clean(path)}"

    def metadata_path(self, path: str) -> str:
        return f"{self.mount}/metadata/{_clean(path)}"

    def missing_capabilities(self, paths_and_caps: Mapping[str, set[str]]) -> dict[str, set[str]]:
        """For each API path (``<mount>/data/<path>``...), the wanted capabilities the token lacks.

        Only paths with something missing are returned, so an empty dict means "all granted".
        """
        paths = sorted({p.strip("/") for p in paths_and_caps})
        granted_by_path: dict[str, Any] = {}
        # Vault and OpenBao refuse a JSON body with more than 1,000 strings (listener
        # max_request_json_strings): a plan for hundreds of accounts asks in chunks.
        for start in range(0, len(paths), _CAPABILITY_PATHS_PER_REQUEST):
            response = self._capabilities(paths[start : start + _CAPABILITY_PATHS_PER_REQUEST])
            granted_by_path.update(response.get("data") or response)
        missing: dict[str, set[str]] = {}
        for path, wanted in paths_and_caps.items():
            granted = set(granted_by_path.get(path.strip("/"), []))
            if "root" in granted:
                continue
            lacking = set(wanted) if "deny" in granted else set(wanted) - granted
            if lacking:
                missing[path] = lacking
        return missing

    def _capabilities(self, paths: list[str]) -> dict[str, Any]:
        with self._calls("checking capabilities (sys/capabilities-self)"):
            response: dict[str, Any] = self._idempotent(
                lambda: self._hvac.sys.get_capabilities(paths=paths), "capabilities"
            )
        return response

    # -- plumbing --------------------------------------------------------------------------

    def _get_current(self, path: str) -> _Current:
        where = f"{self.mount}/{path}"
        self.ensure_fresh_token()
        try:
            with self._calls(f"reading {where}"):
                response = self._idempotent(
                    lambda: self._adapter.get_json(self._url("data", path)),
                    f"read {path}",
                )
        except _NotFound as missing:
            # a deleted or destroyed current version answers 404 with its metadata
            body = missing.body if isinstance(missing.body, dict) else {}
            meta = (body.get("data") or {}).get("metadata") or {}
            return _Current(
                data=None,
                version=int(meta.get("version") or 0),
                custom_metadata=dict(meta.get("custom_metadata") or {}),
            )
        payload = response["data"]
        meta = payload.get("metadata") or {}
        return _Current(
            data=dict(payload.get("data") or {}),
            version=int(meta.get("version") or 0),
            custom_metadata=dict(meta.get("custom_metadata") or {}),
        )

    def _url(self, kind: str, path: str) -> str:
        """The KV v2 API path of ``path``'s ``data`` or ``metadata``, quoted as hvac quotes it."""
        return str(
            hvac.utils.format_url(
                "/v1/{mount_point}/{kind}/{path}", mount_point=self.mount, kind=kind, path=path
            )
        )

    def _put(self, path: str, data: dict[str, Any], cas: int) -> int:
        where = f"{self.mount}/{path}"
        try:
            with self._calls(f"writing {where}"):
                response = self._adapter.send_json(
                    "POST", self._url("data", path), {"options": {"cas": cas}, "data": data}
                )
        except _CasMismatch:
            raise _cas_conflict(self.address, where, cas, None) from None
        return int(response["data"]["version"])

    def _idempotent(self, fn: Callable[[], T], describe: str) -> T:
        if self._retry is None:
            return fn()
        return self._retry.call(fn, idempotent=True, describe=f"Vault {describe}")

    @contextmanager
    def _calls(self, action: str, *, login: bool = False) -> Iterator[None]:
        """Turn what hvac and requests raise into one-line VaultErrors naming the address."""
        try:
            yield
        except hvac_exc.InvalidPath as exc:
            if login:
                raise VaultError(
                    f"Vault at {self.address}: {action} failed: no such path"
                ) from None
            raise _NotFound(exc.json) from None
        except hvac_exc.InvalidRequest as exc:
            reason = self._reason(exc)
            if "check-and-set" in reason:
                raise _CasMismatch() from None
            raise VaultError(f"Vault at {self.address}: {action} failed: {reason}") from None
        except (hvac_exc.Forbidden, hvac_exc.Unauthorized) as exc:
            verb = "was rejected" if login else "failed"
            raise VaultError(
                f"Vault at {self.address}: {action} {verb}: {self._reason(exc)}"
            ) from None
        except hvac_exc.VaultError as exc:
            raise VaultError(
                f"Vault at {self.address}: {action} failed: {self._reason(exc)}"
            ) from None
        except requests.Timeout:
            raise VaultError(
                f"Vault at {self.address}: {action}: no answer within {self._timeout:g}s"
            ) from None
        except requests.RequestException as exc:
            raise VaultError(
                f"Vault at {self.address} is unreachable ({action}: {type(exc).__name__})"
            ) from None

    def _reason(self, exc: hvac_exc.VaultError) -> str:
        errors = exc.errors if isinstance(exc.errors, list) else [exc.errors] if exc.errors else []
        text = "; ".join(str(e) for e in errors) or type(exc).__name__
        text = re.sub(r"\d+ errors? occurred:", " ", text).replace("*", " ")
        return self._redactor.redact(" ".join(text.split())) or type(exc).__name__


class _NotFound(Exception):
    def __init__(self, body: Any) -> None:
        self.body = body


class _CasMismatch(Exception):
    pass


def _cas_conflict(address: str, where: str, expected: int, actual: int | None) -> CasConflict:
    now = f", it is at version {actual}" if actual is not None else ""
    return CasConflict(
        f"Vault at {address}: {where} changed since it was read "
        f"(expected version {expected}{now}); nothing was written"
    )


def _clean(path: str) -> str:
    cleaned = path.strip().strip("/")
    if not cleaned or any(part in ("", ".", "..") for part in cleaned.split("/")):
        raise VaultError(f"invalid Vault path {path!r}")
    return cleaned


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
