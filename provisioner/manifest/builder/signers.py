"""An account's ``signer:`` (its own, the default one, or none) as a ``Signer``."""

from __future__ import annotations

from typing import Any

from provisioner.manifest.builder.reader import Reader
from provisioner.manifest.builder.references import expand, secret_ref
from provisioner.manifest.model import KeystoreSigner, PrivateKeySigner, RemoteSigner, Signer
from provisioner.manifest.positions import NodePath


def account_signer(
    r: Reader, raw: dict[str, Any], path: NodePath, defaults: dict[str, Any], name: str
) -> tuple[Signer | None, bool]:
    """The signer and whether it was built; ``(None, True)`` is an import-only account."""
    if "signer" in raw:
        source, base = raw, path
    elif "signer" in defaults:
        source, base = defaults, ("defaults",)
    else:
        return None, True
    block = source["signer"]
    signer_path: NodePath = (*base, "signer")
    if block is None:
        return None, True
    if not isinstance(block, dict) or r.findings.explained(signer_path) or len(block) != 1:
        return None, False
    signer = _signer(r, block, signer_path, name)
    return signer, signer is not None


def _signer(r: Reader, block: dict[str, Any], path: NodePath, name: str) -> Signer | None:
    kind, body = next(iter(block.items()))
    where: NodePath = (*path, kind)
    if not isinstance(body, dict) or r.findings.explained(where):
        return None
    if kind == "private_key":
        key = secret_ref(r, body, where, name)
        return PrivateKeySigner(key) if key else None
    if kind == "keystore":
        keystore_path = r.get(body, "path", where)
        password = r.get_container(body, "password", where)
        ref = secret_ref(r, password, (*where, "password"), name) if password is not None else None
        if keystore_path is None or ref is None:
            return None
        expanded = expand(r, keystore_path.value, keystore_path.path, name)
        return KeystoreSigner(r.local_path(expanded), ref) if expanded else None
    if kind == "remote":
        url = r.get(body, "url", where)
        timeout = r.get(body, "timeout_seconds", where)
        if url is None or ("timeout_seconds" in body and timeout is None):
            return None
        expanded = expand(r, url.value, url.path, name)
        if expanded is None:
            return None
        if timeout is None:
            return RemoteSigner(expanded)
        # a timeout in seconds, not an amount: a float is the right type here
        return RemoteSigner(expanded, timeout_seconds=float(timeout.value))
    return None
