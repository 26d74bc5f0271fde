"""Import an account's keys taken from the web app: check them against dYdX, then store them in Vault.

Everything is checked before the first write, so a refused import leaves nothing behind:

1. the manifest names a ``default`` API key destination (the web app's API_KEY_PAIRS key
   is the one derived at onboarding, i.e. the default key);
2. neither destination holds foreign data, nor a different key of ours (the same key
   again is fine: the import is then a no-op, or completes the record);
3. the API key works: an authenticated ``GET /v3/accounts/:id`` for the manifest address
   answers, and the account it returns has the imported STARK public key. That answer
   also gives the position and account ids the STARK secret records.

No Ethereum key is used or needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from provisioner.clients.dydx import ApiCredentials, DydxError, OnboardedAccount
from provisioner.clients.vault import SecretRecord
from provisioner.custody.local_storage import WebAppKeys
from provisioner.errors import ProvisionerError
from provisioner.facts import VaultEntry
from provisioner.manifest.model import AccountSpec
from provisioner.records import api_key_secret, stark_secret


class ImportRefused(ProvisionerError):
    """The keys cannot be imported as they are; nothing was written. Never quotes a secret."""


class SecretStore(Protocol):
    """The part of ``VaultClient`` the import uses."""

    def read(self, path: str) -> SecretRecord: ...

    def write_owned(
        self,
        path: str,
        data: Mapping[str, str],
        *,
        account: str,
        expected_version: int,
        current: SecretRecord | None = None,
    ) -> int: ...


class AccountReader(Protocol):
    """The part of ``DydxClient`` the import uses."""

    def get_account(self, address: str, creds: ApiCredentials) -> OnboardedAccount: ...


@dataclass(frozen=True)
class StoredSecret:
    what: str  # "STARK key" / "API key default"
    path: str
    written: bool  # False: Vault already held exactly this
    version: int


@dataclass(frozen=True)
class ImportResult:
    account: OnboardedAccount
    secrets: tuple[StoredSecret, ...]


@dataclass(frozen=True)
class _Write:
    what: str
    path: str
    current: SecretRecord  # the destination as read before the checks
    data: dict[str, str] = field(repr=False)
    unchanged: bool


def import_web_app_keys(
    spec: AccountSpec,
    keys: WebAppKeys,
    *,
    vault: SecretStore,
    dydx: AccountReader,
    network: str,
    source: str,
) -> ImportResult:
    """Store ``keys`` at the account's STARK key and default API key destinations.

    ``source`` (the export's file name) starts every refusal message.
    """
    default = next((k for k in spec.api_keys if k.is_default), None)
    if default is None:
        raise _refused(
            source,
            spec,
            f"the manifest names no 'default' API key for {spec.name}, and API_KEY_PAIRS holds the "
            "default key (the one derived at onboarding); add `- name: default` with a `secret` path "
            "to its api_keys",
        )
    stark_rec = vault.read(spec.stark_key_path)
    api_rec = vault.read(default.secret_path)
    _check_stark_destination(stark_rec, keys, spec, source)
    _check_api_destination(api_rec, keys, spec, source)
    account = _check_at_dydx(dydx, keys, spec, source)
    writes = [
        _planned(
            "STARK key",
            stark_rec,
            stark_secret(keys.stark, spec.address, network, account),
        ),
        _planned(
            "API key default",
            api_rec,
            api_key_secret(keys.api, spec.address, network),
        ),
    ]
    stored = []
    for w in writes:
        if w.unchanged:
            stored.append(
                StoredSecret(w.what, w.path, written=False, version=w.current.entry.version)
            )
            continue
        try:
            version = vault.write_owned(
                w.path,
                w.data,
                account=spec.name,
                expected_version=w.current.entry.version,
                current=w.current,
            )
        except ProvisionerError as exc:
            done = [s.path for s in stored if s.written]
            if not done:
                raise
            # Only a writer racing us gets here (everything was checked): say what did land.
            raise ProvisionerError(
                f"{exc}; but {', '.join(done)} was stored before it: run the import again to finish"
            ) from None
        stored.append(StoredSecret(w.what, w.path, written=True, version=version))
    return ImportResult(account=account, secrets=tuple(stored))


def _planned(what: str, rec: SecretRecord, data: dict[str, str]) -> _Write:
    unchanged = rec.entry.exists and dict(rec.data) == data
    return _Write(what, rec.entry.path, rec, data, unchanged)


def _check_stark_destination(
    rec: SecretRecord, keys: WebAppKeys, spec: AccountSpec, source: str
) -> None:
    entry = rec.entry
    if entry.is_foreign(spec.name):
        raise _refused(source, spec, _foreign(entry))
    if not entry.exists:
        return
    stored_for = rec.data.get("ethereum_address", "")
    if stored_for and stored_for.lower() != spec.address.lower():
        raise _refused(
            source,
            spec,
            f"{entry.path} holds a STARK key for {stored_for}, not {spec.address}; "
            "refusing to replace it",
        )
    stored_public = _hex_or_none(rec.data.get("public_key"))
    stored_private = _hex_or_none(rec.data.get("private_key"))
    same = stored_private == keys.stark.private_key if stored_private is not None else None
    if same is None and stored_public is not None:
        same = stored_public == keys.stark.public_key
    if same is False:
        shown = f" (public key {hex(stored_public)})" if stored_public is not None else ""
        raise _refused(
            source,
            spec,
            f"{entry.path} already holds a different STARK key{shown}, written by this tool; "
            "refusing to replace it (move it away first if the export is the right one)",
        )


def _check_api_destination(
    rec: SecretRecord, keys: WebAppKeys, spec: AccountSpec, source: str
) -> None:
    entry = rec.entry
    if entry.is_foreign(spec.name):
        raise _refused(source, spec, _foreign(entry))
    if not entry.exists:
        return
    stored_key = rec.data.get("key")
    if stored_key is not None and stored_key != keys.api.key:
        raise _refused(
            source,
            spec,
            f"{entry.path} already holds API key {stored_key}, not {keys.api.key}; "
            "refusing to replace it (move it away first if the export is the right one)",
        )
    if stored_key is not None and (
        rec.data.get("secret") != keys.api.secret
        or rec.data.get("passphrase") != keys.api.passphrase
    ):
        raise _refused(
            source,
            spec,
            f"{entry.path} holds API key {stored_key} with another secret or passphrase than the "
            "export's; refusing to replace it",
        )


def _check_at_dydx(
    dydx: AccountReader, keys: WebAppKeys, spec: AccountSpec, source: str
) -> OnboardedAccount:
    key_id = keys.api.key
    try:
        account = dydx.get_account(spec.address, keys.api)
    except DydxError as exc:
        if exc.status in (401, 403):
            raise _refused(
                source,
                spec,
                f"dYdX refused API key {key_id} ({exc.msg or exc.status}): it was deleted, or its "
                "secret or passphrase is wrong; expected a live key: export the keys again from "
                "the web app",
            ) from None
        if exc.status == 404:
            raise _refused(
                source,
                spec,
                f"API key {key_id} is live at dYdX but reads no account for {spec.address}: it "
                "belongs to another wallet; expected the keys of the manifest address",
            ) from None
        raise
    if account.stark_key != keys.stark.public_key:
        raise _refused(
            source,
            spec,
            f"dYdX's account for {spec.address} has STARK key {hex(account.stark_key)}, the export's "
            f"is {keys.stark.public_key_hex}; expected the key pair this wallet onboarded with",
        )
    return account


def _foreign(entry: VaultEntry) -> str:
    owner = (
        f"managed by {entry.managed_by!r} for {entry.account!r}"
        if entry.managed_by
        else "not written by dydx-provisioner"
    )
    return f"{entry.path} already holds data {owner}; left untouched (move it away or change the destination)"


def _refused(source: str, spec: AccountSpec, reason: str) -> ImportRefused:
    return ImportRefused(f"{source}: import for {spec.name} refused: {reason}; nothing was written")


def _hex_or_none(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None
