"""Standard Ethereum V3 JSON keystores (geth, clef, MetaMask exports), decrypted into a LocalKeySigner."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account

from provisioner.signers.base import SignerError
from provisioner.signers.local import LocalKeySigner


def decrypt_keystore(path: str | Path, password: str) -> str:
    """The keystore's private key as 0x-prefixed hex. The caller must register it with the Redactor."""
    try:
        keyfile = json.loads(Path(path).read_text())
    except OSError as exc:
        raise SignerError(f"keystore {path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError:
        raise SignerError(f"keystore {path}: not a JSON file") from None
    if not isinstance(keyfile, dict) or not isinstance(
        keyfile.get("crypto", keyfile.get("Crypto")), dict
    ):
        raise SignerError(f"keystore {path}: not an Ethereum V3 keystore (no crypto section)")
    try:
        key = Account.decrypt(keyfile, password)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise SignerError(f"keystore {path}: wrong password") from None
        raise SignerError(f"keystore {path}: cannot decrypt it ({exc})") from None
    except (KeyError, TypeError, NotImplementedError) as exc:
        raise SignerError(f"keystore {path}: unsupported or damaged keystore ({exc!r})") from None
    return "0x" + bytes(key).hex()


def keystore_signer(path: str | Path, password: str) -> LocalKeySigner:
    return LocalKeySigner(decrypt_keystore(path, password))
