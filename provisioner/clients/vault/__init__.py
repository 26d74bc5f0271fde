"""The Vault client: secrets and state (``client``), login (``auth``), HTTP (``adapter``), errors."""

from provisioner.clients.vault.client import SECRET_FIELDS, SecretRecord, VaultClient
from provisioner.clients.vault.errors import CasConflict, ForeignSecret, VaultError

__all__ = [
    "SECRET_FIELDS",
    "CasConflict",
    "ForeignSecret",
    "SecretRecord",
    "VaultClient",
    "VaultError",
]
