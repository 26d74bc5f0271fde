"""The Vault client: KV v2 reads and owned writes, the tool's own state, capability checks.

The only code that talks to Vault (login is in ``auth``, the HTTP in ``adapter``). Every
secret value it sees is registered with the Redactor before it can reach output, and
every error it raises is one line naming the address and what failed.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import hvac
import hvac.utils

from provisioner.clients.transport import HttpTransport, Transport
from provisioner.clients.vault.adapter import TransportAdapter
from provisioner.clients.vault.auth import SecretSource, TokenKeeper
from provisioner.clients.vault.errors import (
    CasConflict,
    CasMismatch,
    ForeignSecret,
    NotFound,
    VaultError,
    cas_conflict,
    translated,
)
from provisioner.content_metadata import (
    content_metadata,
    recorded_content,
    without_content_keys,
)
from provisioner.facts import MANAGED_BY, VaultEntry
from provisioner.manifest.model import VaultSpec
from provisioner.records import ROTATION_METADATA
from provisioner.redact import Redactor

T = TypeVar("T")

SECRET_FIELDS = frozenset({"private_key", "secret", "passphrase"})
META_MANAGED_BY = "managed-by"
META_ACCOUNT = "account"
_CAPABILITY_PATHS_PER_REQUEST = 400  # OpenBao refuses JSON bodies of > 1,000 strings


@dataclass(frozen=True)
class MetadataRecord:
    """One metadata read: the fact, and whether apply's record describes the current version."""

    entry: VaultEntry
    described: bool


@dataclass(frozen=True)
class SecretRecord:
    """One KV v2 read: the fact (no secret values) and the data itself, kept out of repr."""

    entry: VaultEntry
    data: Mapping[str, str] = field(repr=False)
    # custom_metadata as read with it (public values); None: a fact not read (observe's)
    custom_metadata: Mapping[str, str] | None = field(default=None, repr=False)


class Retrier(Protocol):
    """What ``provisioner.clients.retry.RetryPolicy`` offers; only idempotent calls go through it."""

    def call(self, fn: Callable[[], T], *, idempotent: bool, describe: str) -> T: ...


@dataclass(frozen=True)
class _Current:
    """What one GET of ``<mount>/data/<path>`` said, before it becomes a VaultEntry."""

    data: dict[str, Any] | None  # None: no live current version
    version: int
    custom_metadata: dict[str, str]
    created_time: str = ""  # of the current version, RFC 3339


class VaultClient:
    def __init__(
        self,
        spec: VaultSpec,
        resolver: SecretSource,
        redactor: Redactor,
        *,
        transport: Transport | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        retry: Retrier | None = None,
        revoke_on_close: bool = True,
    ) -> None:
        """Prefer ``connect``, which also logs in. ``transport``: the run's shared one; without
        it the client makes (and closes) its own. ``revoke_on_close``: ``close`` revokes a
        token this client obtained by logging in (never one it was given)."""
        self.spec = spec
        self.address = spec.address.rstrip("/")
        self.mount = spec.mount.strip("/")
        self._redactor = redactor
        self._timeout = timeout
        self._retry = retry
        self._revoke_on_close = revoke_on_close
        self._transport = transport or HttpTransport()
        self._closes_transport = transport is None
        # Entries of one kind (every account's STARK secret, say) name the same fields: one
        # frozenset for them all, not one per entry of a 10,000-account plan.
        self._field_sets: dict[frozenset[str], frozenset[str]] = {}
        # token="" keeps hvac from picking VAULT_TOKEN or ~/.vault-token up behind our back
        self._hvac = hvac.Client(
            url=self.address,
            token="",
            timeout=timeout,
            namespace=spec.namespace,
            adapter=TransportAdapter,
            transport=self._transport,
        )
        self._adapter: TransportAdapter = self._hvac.adapter
        self._kv = self._hvac.secrets.kv.v2
        self._token = TokenKeeper(
            spec, self._hvac, self._adapter, resolver, redactor, clock=clock, calls=self._calls
        )

    @classmethod
    def connect(
        cls,
        spec: VaultSpec,
        resolver: SecretSource,
        redactor: Redactor,
        *,
        transport: Transport | None = None,
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
            transport=transport,
            timeout=timeout,
            clock=clock,
            retry=retry,
            revoke_on_close=revoke_on_close,
        )
        client._token.login()
        return client

    def close(self) -> None:
        """The end of the run: revoke a login token (unless told to keep it), then close."""
        if self._revoke_on_close:
            self._token.revoke()
        self._adapter.close()
        if self._closes_transport:
            self._transport.close()

    @property
    def stats(self) -> dict[str, int]:
        """HTTP requests made so far: ``reads``, ``writes`` (secrets, metadata, state) and ``auth``."""
        return self._adapter.snapshot()

    def ensure_fresh_token(self) -> None:
        """Renew the token, or log in again, when little of its TTL is left.

        Called before every read and write: a long run can outlive the token it started
        with. Costs no request while the token has time left.
        """
        self._token.ensure_fresh()

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
        self.ensure_fresh_token()
        try:
            with self._calls(f"reading the metadata of {self.mount}/{path}"):
                response = self._idempotent(
                    lambda: self._adapter.get(self._url("metadata", path)),
                    f"read metadata {path}",
                )
        except NotFound:
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
            written_at=_epoch(str(state.get("created_time") or "")) if exists else None,
            metadata=tuple(sorted((k, custom[k]) for k in ROTATION_METADATA if custom.get(k)))
            if ours
            else (),
        )
        return MetadataRecord(entry, described=recorded is not None)

    def _record(self, path: str, current: _Current) -> SecretRecord:
        data = {k: _text(v) for k, v in current.data.items()} if current.data is not None else {}
        for name in SECRET_FIELDS & data.keys():
            self._redactor.register(data[name])
        meta = current.custom_metadata
        public: tuple[tuple[str, str], ...] = ()
        ours: tuple[tuple[str, str], ...] = ()
        # Only our own layout says which fields are not secret: a foreign secret shows names only.
        if meta.get(META_MANAGED_BY) == MANAGED_BY:
            public = tuple(sorted((k, v) for k, v in data.items() if k not in SECRET_FIELDS))
            ours = tuple(sorted((k, str(meta[k])) for k in ROTATION_METADATA if meta.get(k)))
        entry = VaultEntry(
            path=path,
            exists=current.data is not None,
            version=current.version,
            managed_by=meta.get(META_MANAGED_BY),
            account=meta.get(META_ACCOUNT),
            fields=self._field_sets.setdefault(names := frozenset(data), names),
            public=public,
            written_at=_epoch(current.created_time) if current.data is not None else None,
            metadata=ours,
        )
        return SecretRecord(entry, MappingProxyType(data), MappingProxyType(meta))

    def write_owned(
        self,
        path: str,
        data: Mapping[str, str],
        *,
        account: str,
        expected_version: int,
        current: SecretRecord | None = None,
    ) -> int:
        """Write a secret this tool owns: custom_metadata first, then the data with check-and-set.

        ``expected_version`` 0 means the path must hold no version yet. Returns the new
        version. A foreign secret is refused before its metadata is touched, judged from
        ``current`` (the record the caller has just read) or else from one read here; the
        CAS on the data write is what guards against a writer in between. The keys others
        put in custom_metadata are kept, as that same read returned them (read here when the
        record holds none).
        """
        path = _clean(path)
        for name in SECRET_FIELDS & data.keys():
            self._redactor.register(data[name])
        self.ensure_fresh_token()
        record = current if current is not None else self._record(path, self._get_current(path))
        entry, kept = record.entry, record.custom_metadata
        where = f"{self.mount}/{path}"
        if entry.is_foreign(account):
            owner = (
                f"managed-by={entry.managed_by!r}, account={entry.account!r}"
                if entry.managed_by
                else "no managed-by metadata"
            )
            raise ForeignSecret(
                f"Vault at {self.address}: {where} holds data not written by {MANAGED_BY} "
                f"for account {account} ({owner}); refusing to overwrite it"
            )
        if entry.version != expected_version:
            raise cas_conflict(self.address, where, expected_version, entry.version)
        if kept is None:
            # custom_metadata is replaced as a whole: keep the keys others put there. A path
            # we never wrote (a caller's fresh read of it) has none; one of ours is read.
            kept = self._custom_metadata(path) if entry.exists or entry.version else {}
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
                    lambda: self._adapter.get(self._url("metadata", path)),
                    f"read metadata {path}",
                )
        except NotFound:
            return {}
        custom = (response.get("data") or {}).get("custom_metadata") or {}
        return {str(k): _text(v) for k, v in custom.items()}

    def _set_custom_metadata(self, path: str, custom: Mapping[str, str]) -> None:
        with self._calls(f"setting metadata on {self.mount}/{path}"):
            # what hvac's kv.v2.update_metadata sends, its default included
            self._adapter.post(
                self._url("metadata", path),
                json={"delete_version_after": "0s", "custom_metadata": dict(custom)},
            )

    def set_owned_metadata(self, path: str, metadata: Mapping[str, str], *, account: str) -> None:
        """Set custom_metadata keys (public values only) on a secret this tool owns for
        ``account``, keeping every other key; ForeignSecret when the path is not ours."""
        path = _clean(path)
        self.ensure_fresh_token()
        found = self._get_current(path)
        if not self._record(path, found).entry.is_ours(account):
            raise ForeignSecret(
                f"Vault at {self.address}: {self.mount}/{path} is not managed by {MANAGED_BY} "
                f"for account {account}; refusing to change its metadata"
            )
        custom = {**found.custom_metadata, **metadata}
        self._set_custom_metadata(
            path, {**custom, META_MANAGED_BY: MANAGED_BY, META_ACCOUNT: account}
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
            self._adapter.delete(self._url("metadata", path))

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
        except NotFound:
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
                    lambda: self._adapter.get(self._url("data", path)),
                    f"read {path}",
                )
        except NotFound as missing:
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
            created_time=str(meta.get("created_time") or ""),
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
                response = self._adapter.post(
                    self._url("data", path), json={"options": {"cas": cas}, "data": data}
                )
        except CasMismatch:
            raise cas_conflict(self.address, where, cas, None) from None
        return int(response["data"]["version"])

    def _idempotent(self, fn: Callable[[], T], describe: str) -> T:
        if self._retry is None:
            return fn()
        return self._retry.call(fn, idempotent=True, describe=f"Vault {describe}")

    @contextmanager
    def _calls(self, action: str, *, login: bool = False) -> Iterator[None]:
        with translated(self.address, action, self._redactor, self._timeout, login=login):
            yield


def _clean(path: str) -> str:
    cleaned = path.strip().strip("/")
    if not cleaned or any(part in ("", ".", "..") for part in cleaned.split("/")):
        raise VaultError(f"invalid Vault path {path!r}")
    return cleaned


def _epoch(rfc3339: str) -> float | None:
    """Vault's created_time (nanoseconds, "Z") as epoch seconds; None when absent or unreadable."""
    if not rfc3339:
        return None
    text = rfc3339.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # datetime takes at most microseconds
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
