"""Turns a manifest signer block into a working signer and checks it signs for the manifest's address."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from provisioner.ethaddress import to_checksum
from provisioner.manifest.model import (
    KeystoreSigner,
    PrivateKeySigner,
    RemoteSigner,
    SecretRef,
    Signer,
)
from provisioner.redact import Redactor
from provisioner.signers.base import EthSigner, SignerError

if TYPE_CHECKING:
    from provisioner.clients.transport import Transport

# The signer modules are imported when a signer is made: eth_account costs a quarter of a
# second to import, and a converged plan makes no signer at all.


class SecretSource(Protocol):
    """Anything that turns a reference into its value and registers the value with the Redactor."""

    def resolve(self, ref: SecretRef) -> str: ...


def make_signer(
    spec: Signer,
    address: str,
    resolver: SecretSource,
    *,
    account: str | None = None,
    redactor: Redactor | None = None,
    transport: Transport | None = None,
) -> EthSigner:
    """A signer for ``spec``, refused unless it signs for ``address``.

    ``account`` (the manifest name) goes into error messages. ``redactor`` learns the
    private key decrypted from a keystore, which the resolver never sees. ``transport``
    is what a remote signer sends through (the run's shared one).
    """
    who = account or address
    try:
        expected = to_checksum(address)
    except ValueError:
        raise SignerError(f"signer for {who}: {address!r} is not an Ethereum address") from None
    signer: EthSigner
    if isinstance(spec, PrivateKeySigner):
        key = resolver.resolve(spec.key)
        if redactor is not None:
            redactor.register(key)
        signer = _local(key, who, f"private key from {spec.key.describe()}")
    elif isinstance(spec, KeystoreSigner):
        password = resolver.resolve(spec.password)
        if redactor is not None:
            redactor.register(password)
        from provisioner.signers.keystore import decrypt_keystore

        key = decrypt_keystore(spec.path, password)
        if redactor is not None:
            redactor.register(key)
        signer = _local(key, who, f"keystore {spec.path}")
    elif isinstance(spec, RemoteSigner):
        from provisioner.signers.remote import RemoteSigner as RemoteJsonRpcSigner

        remote = RemoteJsonRpcSigner(spec.url, expected, spec.timeout_seconds, transport=transport)
        remote.check_address()
        signer = remote
    else:
        raise SignerError(f"signer for {who}: unknown signer kind {type(spec).__name__}")
    if signer.address != expected:
        raise SignerError(f"signer for {who} signs for {signer.address}, manifest says {expected}")
    return signer


def _local(key: str, who: str, source: str) -> EthSigner:
    from provisioner.signers.local import LocalKeySigner

    try:
        return LocalKeySigner(key)
    except SignerError as exc:
        raise SignerError(f"signer for {who}: {source}: {exc}") from None
