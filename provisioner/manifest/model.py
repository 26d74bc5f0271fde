"""Typed desired state: what the manifest asks for, with no I/O and no secret values.

Secret references stay references (``SecretRef``) until the point of use, so
``validate`` and ``plan`` need no secret they don't use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal


@dataclass(frozen=True)
class Location:
    """Where a node sits in the manifest, 1-based, for error messages."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret value: ``{vault: "path#field"}``, ``{env: NAME}`` or ``{file: path}``.

    For ``vault`` the path is relative to the manifest's KV v2 mount and
    ``field`` names the key inside the secret. For ``file`` the path is
    resolved against the manifest's directory by the loader.
    """

    kind: Literal["vault", "env", "file"]
    target: str
    field: str | None = None
    # where the reference is written, for messages when resolving fails; not part of its identity
    # (``dataclasses.field`` spelled out: the attribute ``field`` above shadows the name here)
    location: Location | None = dataclasses.field(default=None, compare=False)
    # for ``file``: the manifest's directory, which the file must still be inside when read
    root: str | None = dataclasses.field(default=None, compare=False)

    def describe(self) -> str:
        if self.kind == "vault":
            return f"vault:{self.target}#{self.field}"
        return f"{self.kind}:{self.target}"


@dataclass(frozen=True)
class PrivateKeySigner:
    key: SecretRef
    kind: Literal["private_key"] = "private_key"


@dataclass(frozen=True)
class KeystoreSigner:
    path: str
    password: SecretRef
    kind: Literal["keystore"] = "keystore"


@dataclass(frozen=True)
class RemoteSigner:
    """A JSON-RPC signer (``eth_signTypedData_v4``, ``eth_sendTransaction``); the key never enters this process."""

    url: str
    timeout_seconds: float = 120.0
    kind: Literal["remote"] = "remote"


Signer = PrivateKeySigner | KeystoreSigner | RemoteSigner


DEFAULT_ROTATION_OVERLAP = 3600  # seconds the previous key keeps working after a rotation


@dataclass(frozen=True)
class ApiKeySpec:
    name: str
    secret_path: str
    location: Location | None = None
    # seconds; None: never rotated on a schedule (``provision rotate`` still can, but for the
    # default key, which is derived from the wallet's signature and never deleted)
    rotate_after: int | None = None
    rotation_overlap: int = DEFAULT_ROTATION_OVERLAP

    @property
    def is_default(self) -> bool:
        return self.name == "default"


@dataclass(frozen=True)
class AccountSpec:
    name: str
    address: str  # EIP-55 checksummed
    signer: Signer | None  # None: import-only account
    deposit: Decimal  # USDC, exact, at most 6 places, >= 0
    stark_key_path: str  # KV v2 path (relative to the mount) for the STARK key pair
    api_keys: tuple[ApiKeySpec, ...] = ()
    allowance: Literal["exact", "max"] = "exact"
    location: Location | None = None


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    chain_id: int
    api_url: str
    rpc_url: str
    exchange_contract: str
    usdc_contract: str
    collateral_asset_id: int
    confirmations: int = 14
    max_fee_gwei: Decimal | None = None  # ceiling on the fee per gas a transaction may pay


@dataclass(frozen=True)
class VaultAuth:
    """How to log in to Vault. Secret inputs (role secret, JWT) are references."""

    method: Literal["token", "approle", "jwt", "kubernetes"]
    token: SecretRef | None = None  # token: default {env: VAULT_TOKEN}
    role: str | None = None  # jwt / kubernetes role, approle role_id
    secret_id: SecretRef | None = None  # approle
    jwt: SecretRef | None = None  # jwt / kubernetes service-account token
    mount_path: str | None = None  # auth mount, default = method name


@dataclass(frozen=True)
class VaultSpec:
    address: str
    auth: VaultAuth
    mount: str = "secret"
    state_path: str = "dydx-provisioner"
    namespace: str | None = None


@dataclass(frozen=True)
class Manifest:
    path: str
    version: int
    network: NetworkSpec
    vault: VaultSpec
    accounts: tuple[AccountSpec, ...]
    max_deposit: Decimal | None = None  # per-run ceiling on the total deposited
    extra: dict[str, object] = field(default_factory=dict)

    def account(self, name: str) -> AccountSpec:
        for acc in self.accounts:
            if acc.name == name:
                return acc
        raise KeyError(name)
