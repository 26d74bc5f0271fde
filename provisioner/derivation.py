"""Deriving, while observing, a STARK key that Vault lacks (an account onboarded in the web app).

One "dYdX STARK Key" signature, made twice to refuse a signer that is not deterministic, and
the default API key's signature when no stored credentials let dYdX's account be read (its
position). Nothing is stored and nothing is sent but that read. Which signers derive is the
caller's ``Derive``: local ones by default, remote ones only when asked (``plan --derive``),
none for an untrusted plan. Used by observe.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from provisioner.clients.dydx import (
    ApiCredentials,
    DydxError,
    NonDeterministicSigner,
    SignatureMismatch,
)
from provisioner.clients.vault import SecretRecord
from provisioner.connections import Connections
from provisioner.facts import DerivedStarkKey
from provisioner.manifest.model import AccountSpec, RemoteSigner
from provisioner.records import API_FIELDS, DEFAULT_API_KEY, api_credential_fields
from provisioner.secrets import SecretError
from provisioner.signers.base import EthSigner, SignerError
from provisioner.signers.factory import make_signer


class Derive(StrEnum):
    """Which signers derive a STARK key that Vault lacks, while observing."""

    OFF = "off"  # none: untrusted plans
    LOCAL = "local"  # keys held here (Vault, env, file, keystore): the default
    ALL = "all"  # remote signers too (``--derive``): a signature may need a person's approval

    def covers(self, spec: AccountSpec) -> bool:
        if spec.signer is None or self is Derive.OFF:
            return False
        return self is Derive.ALL or not isinstance(spec.signer, RemoteSigner)


@dataclass(frozen=True)
class Derivation:
    """What deriving gave: the key (None when the signer could not be used: ``error`` says
    why), and the default API key's id when it was recovered on the way."""

    key: DerivedStarkKey | None = None
    error: str | None = None
    default_key_id: str | None = None


def signer_for(conn: Connections, spec: AccountSpec) -> EthSigner:
    """The account's signer while observing, refused unless it signs for its address
    (SignerError, SecretError); ``spec.signer`` must be set."""
    assert spec.signer is not None
    return make_signer(
        spec.signer,
        spec.address,
        conn.resolver,
        account=spec.name,
        redactor=conn.redactor,
        transport=conn.transport,
    )


def derive_stark(conn: Connections, spec: AccountSpec, api: dict[str, SecretRecord]) -> Derivation:
    """The STARK key from the signer, in memory, and the position dYdX's account has; or why the
    signer cannot be used. Signed twice (DESIGN §8): a signer whose two signatures differ is
    refused here, before anything is planned on a key that could never be derived again."""
    if spec.signer is None:
        return Derivation()
    try:
        signer = signer_for(conn, spec)
        pair = conn.dydx.derive_stark_key(signer, check_deterministic=True)
    except (SignerError, SecretError, NonDeterministicSigner, SignatureMismatch) as exc:
        return Derivation(error=conn.redactor.redact(str(exc)))
    account = None
    for creds in _stored_credentials(spec, api):
        try:
            account = conn.dydx.get_account(spec.address, creds)
            break
        except DydxError as exc:
            if exc.status not in (401, 403, 404):
                raise
    default_key_id = None
    try:
        if account is None:
            default = conn.dydx.recover_default_credentials(signer)
            default_key_id = default.key
            account = conn.dydx.get_account(spec.address, default)
    except SignerError as exc:
        return Derivation(error=conn.redactor.redact(str(exc)))
    except DydxError as exc:  # the default key is gone at dYdX: the position stays unknown
        if exc.status not in (401, 403, 404):
            raise
        return Derivation(DerivedStarkKey(public_key=pair.public_key_hex), None, default_key_id)
    key = DerivedStarkKey(
        public_key=pair.public_key_hex,
        position_id=account.position_id,
        dydx_stark_key=hex(account.stark_key),
    )
    return Derivation(key, None, default_key_id)


def _stored_credentials(spec: AccountSpec, api: dict[str, SecretRecord]) -> list[ApiCredentials]:
    out = []
    for name in sorted(api, key=lambda n: n != DEFAULT_API_KEY):
        rec = api[name]
        if rec.entry.is_ours(spec.name) and rec.entry.fields >= API_FIELDS:
            key, secret, passphrase = api_credential_fields(rec.data)
            out.append(ApiCredentials(key=key, secret=secret, passphrase=passphrase))
    return out
