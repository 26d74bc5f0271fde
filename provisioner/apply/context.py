"""Per-account working state during apply: the signer and secrets held in memory only."""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioner.apply.budget import DepositBudget
from provisioner.clients.dydx import ApiCredentials, StarkKeyPair
from provisioner.connections import Connections
from provisioner.errors import ProvisionerError
from provisioner.journal import Journal, StoredTx
from provisioner.manifest.model import AccountSpec
from provisioner.signers.base import EthSigner
from provisioner.signers.factory import make_signer


class StepFailed(ProvisionerError):
    pass


@dataclass
class AccountContext:
    spec: AccountSpec
    conn: Connections
    journal: Journal
    budget: DepositBudget = field(default_factory=DepositBudget)
    receipt_timeout: float = 180.0
    tx_hashes: list[str] = field(default_factory=list)
    unconfirmed: list[StoredTx] = field(default_factory=list)  # mined, confirmations to wait for
    _signer: EthSigner | None = None
    _stark: StarkKeyPair | None = None
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
            self._signer = make_signer(
                self.spec.signer,
                self.spec.address,
                self.conn.resolver,
                account=self.spec.name,
                redactor=self.conn.redactor,
            )
        return self._signer

    def stark(self) -> StarkKeyPair:
        """The STARK key pair: Vault is the source of truth once it holds one; derive only before that."""
        if self._stark is None:
            rec = self.conn.vault.read(self.spec.stark_key_path)
            if rec.entry.exists and rec.entry.is_ours(self.spec.name) and "private_key" in rec.data:
                self._stark = StarkKeyPair(
                    private_key=int(rec.data["private_key"], 16),
                    public_key=int(rec.data["public_key"], 16),
                    public_key_y=int(rec.data["public_key_y_coordinate"], 16),
                )
            else:
                raise StepFailed(
                    f"no STARK key for {self.spec.name} in Vault at {self.spec.stark_key_path}"
                )
        return self._stark

    def remember_stark(self, pair: StarkKeyPair) -> None:
        self._stark = pair

    def credentials(self) -> ApiCredentials:
        """Credentials for API-key requests: a stored key of ours, else the default key recovered by the signer."""
        if self._creds is None:
            for key in sorted(self.spec.api_keys, key=lambda k: not k.is_default):
                rec = self.conn.vault.read(key.secret_path)
                if (
                    rec.entry.exists
                    and rec.entry.is_ours(self.spec.name)
                    and {"key", "secret", "passphrase"} <= rec.entry.fields
                ):
                    self._creds = ApiCredentials(
                        key=rec.data["key"],
                        secret=rec.data["secret"],
                        passphrase=rec.data["passphrase"],
                    )
                    break
            else:
                self._creds = self.conn.dydx.recover_default_credentials(self.signer)
        return self._creds

    def remember_credentials(self, creds: ApiCredentials) -> None:
        self._creds = creds

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
            if rec.entry.is_ours(self.spec.name) and rec.data.get("key"):
                ids.add(rec.data["key"])
        return ids
