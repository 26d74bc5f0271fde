"""Per-account working state during apply: the signer and secrets held in memory only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from provisioner.apply.budget import DepositBudget
from provisioner.apply.fence import FencedSigner
from provisioner.apply.ports import ApplyConnections
from provisioner.clients.dydx import ApiCredentials, StarkKeyPair
from provisioner.errors import ProvisionerError
from provisioner.journal import Journal, StoredTx
from provisioner.manifest.model import AccountSpec
from provisioner.records import (
    API_FIELDS,
    API_KEY,
    POSITION_ID,
    api_credential_fields,
    stark_pair_fields,
)
from provisioner.signers.base import EthSigner
from provisioner.signers.factory import make_signer


class StepFailed(ProvisionerError):
    pass


@dataclass
class AccountContext:
    spec: AccountSpec
    conn: ApplyConnections
    journal: Journal
    fence: Callable[[], None] = lambda: None  # before a signer's own broadcast (apply/fence.py)
    budget: DepositBudget = field(default_factory=DepositBudget)
    receipt_timeout: float = 180.0
    tx_hashes: list[str] = field(default_factory=list)
    sent: list[StoredTx] = field(default_factory=list)  # every transaction this run broadcast
    unconfirmed: list[StoredTx] = field(default_factory=list)  # broadcast, not yet final
    _signer: EthSigner | None = None
    _stark: StarkKeyPair | None = None
    _position: int | None = None  # dYdX's position id, from onboarding or the STARK secret
    _creds: ApiCredentials | None = None
    _default_key: str | None = None

    def log(self, message: str) -> None:
        self.conn.log(f"{self.spec.name}: {message}")

    @property
    def chain_id(self) -> int:
        return self.conn.manifest.network.chain_id

    @property
    def confirmations(self) -> int:
        return self.conn.manifest.network.confirmations

    def transactions(self) -> list[StoredTx]:
        """Every transaction journaled for this account's address (under any account name)."""
        return self.journal.transactions(self.chain_id, self.spec.address, self.spec.name)

    @property
    def signer(self) -> EthSigner:
        if self._signer is None:
            if self.spec.signer is None:
                raise StepFailed(f"{self.spec.name} has no signer (import-only)")
            made = make_signer(
                self.spec.signer,
                self.spec.address,
                self.conn.resolver,
                account=self.spec.name,
                redactor=self.conn.redactor,
                transport=self.conn.transport,
            )
            self._signer = FencedSigner(made, self.fence)
        return self._signer

    def stark(self) -> StarkKeyPair:
        """The STARK key pair: Vault is the source of truth once it holds one; derive only before that."""
        if self._stark is None:
            rec = self.conn.vault.read(self.spec.stark_key_path)
            stored = stark_pair_fields(rec.data) if rec.entry.is_ours(self.spec.name) else None
            if rec.entry.exists and stored is not None:
                private, public, y = stored
                self._stark = StarkKeyPair(private_key=private, public_key=public, public_key_y=y)
                self._position = self._position or _int_or_none(rec.data.get(POSITION_ID))
            else:
                raise StepFailed(
                    f"no STARK key for {self.spec.name} in Vault at {self.spec.stark_key_path}"
                )
        return self._stark

    def remember_stark(self, pair: StarkKeyPair) -> None:
        self._stark = pair

    def position_id(self) -> int:
        """The position the deposits go to: the one onboarding answered, else the STARK secret's
        (the record plan read the deposits of), else dYdX's (GET /v3/accounts)."""
        self.stark()
        if self._position is None:
            self._position = self.conn.dydx.get_account(
                self.spec.address, self.credentials()
            ).position_id
        return self._position

    def remember_position(self, position_id: int) -> None:
        self._position = position_id

    def credentials(self) -> ApiCredentials:
        """Credentials for API-key requests: a stored key of ours, else the default key recovered by the signer."""
        if self._creds is None:
            for key in sorted(self.spec.api_keys, key=lambda k: not k.is_default):
                rec = self.conn.vault.read(key.secret_path)
                if (
                    rec.entry.exists
                    and rec.entry.is_ours(self.spec.name)
                    and rec.entry.fields >= API_FIELDS
                ):
                    key_id, secret, passphrase = api_credential_fields(rec.data)
                    self._creds = ApiCredentials(key=key_id, secret=secret, passphrase=passphrase)
                    break
            else:
                self._creds = self.conn.dydx.recover_default_credentials(self.signer)
        return self._creds

    def remember_credentials(self, creds: ApiCredentials) -> None:
        self._creds = creds

    def forget_credentials(self, key_id: str) -> None:
        """``key_id`` was deleted at dYdX: if it is the key requests are signed with, read again."""
        if self._creds is not None and self._creds.key == key_id:
            self._creds = None

    def default_key_id(self) -> str:
        """The default API key's id, derived from the onboarding signature (no request)."""
        if self._default_key is None:
            self._default_key = self.conn.dydx.recover_default_credentials(self.signer).key
        return self._default_key

    def stored_key_ids(self) -> set[str]:
        """Ids of the API keys whose credentials Vault holds for this account (ours only)."""
        ids = set()
        for key in self.spec.api_keys:
            rec = self.conn.vault.read(key.secret_path)
            if rec.entry.is_ours(self.spec.name) and rec.data.get(API_KEY):
                ids.add(rec.data[API_KEY])
        return ids


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
