"""Observed facts: what dYdX, the chain and Vault say right now, per account. Read-only, no secret values.

``observe`` produces these; the planner consumes them. Secret material (keys,
API secrets) never enters a fact: a Vault entry says which fields it holds and
the non-secret ones (public key, API key id, position id) by value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

# Re-exported for the Vault client, which marks what it writes with it.
from provisioner.records import MANAGED_BY as MANAGED_BY


@dataclass(frozen=True)
class VaultEntry:
    """One KV v2 destination. ``exists`` means a live (not deleted) current version holds data."""

    path: str
    exists: bool
    version: int = 0  # current version, 0 when the path has never been written
    managed_by: str | None = None  # custom_metadata["managed-by"]
    account: str | None = None  # custom_metadata["account"]
    fields: frozenset[str] = frozenset()  # names of the data keys present
    # non-secret data values (public key, key id, position id...)
    public: tuple[tuple[str, str], ...] = ()
    # when the current version was written (Vault's created_time, epoch seconds); None: unknown
    written_at: float | None = None
    # this tool's rotation records in custom_metadata (records.ROTATION_METADATA), ours only
    metadata: tuple[tuple[str, str], ...] = ()

    def is_ours(self, account: str) -> bool:
        return self.managed_by == MANAGED_BY and self.account == account

    def is_foreign(self, account: str) -> bool:
        """Holds data this tool did not write for this account: never overwritten."""
        return self.exists and not self.is_ours(account)

    def get(self, name: str) -> str | None:
        return dict(self.public).get(name)

    def meta(self, name: str) -> str | None:
        return dict(self.metadata).get(name)


@dataclass(frozen=True)
class JournalEntry:
    """A transaction this tool signed (and maybe broadcast), persisted before broadcast."""

    intent: str  # e.g. "deposit", "approve", "register"
    tx_hash: str
    nonce: int
    amount: int = 0  # base units for deposit / approve
    status: str = "unknown"  # see journal.py: confirmed, mined, pending, dropped, awaiting...
    journaled_by: str = ""  # the account name that journaled it (a rename shows here)
    problem: str = ""  # set when a person must look at it (a signer sent something else)


@dataclass(frozen=True)
class ApiKeyIntentFact:
    """An API key creation journaled by a run that did not finish it (see journal.py)."""

    name: str  # the manifest's key name
    created: str | None  # the new key's id, if the run got dYdX's answer
    orphans: tuple[str, ...] | None  # listed at dYdX, created by it, not in Vault; None: not listed
    unexpected: tuple[
        str, ...
    ] = ()  # appeared meanwhile, not recorded as created by it: left alone


@dataclass(frozen=True)
class DerivedStarkKey:
    """The STARK key derived in memory from the account's signer, when Vault holds none.

    Only the public half is a fact; the pair itself is neither kept nor stored by observing.
    """

    public_key: str  # 0x hex
    position_id: int | None = None  # dYdX's position for the account; None: dYdX knows no user
    dydx_stark_key: str | None = None  # the key dYdX's account has (0x hex); None: not read


@dataclass(frozen=True)
class AccountFacts:
    name: str
    address: str
    # Vault
    stark_secret: VaultEntry
    api_secrets: tuple[tuple[str, VaultEntry], ...] = ()  # (api key name, entry)
    # dYdX
    user_exists: bool | None = None  # None: could not tell
    dydx_api_keys: frozenset[str] | None = None  # key ids dYdX lists for the user; None: not read
    # chain
    # getEthKey(stark public key) from the exchange, None if unregistered
    stark_key_owner: str | None = None
    usdc_balance: int = 0  # base units in the wallet
    usdc_allowance: int = 0  # to the exchange
    eth_balance_wei: int = 0
    deposited: int = 0  # LogDeposit quantized amounts to this STARK key and position, confirmed
    unconfirmed_deposits: int = (
        0  # LogDeposit amounts with fewer than `confirmations` blocks on top
    )
    pending_deposits: int = 0  # journaled deposits not in the events (pool, dropped, awaiting)
    journal: tuple[JournalEntry, ...] = ()
    api_key_intents: tuple[ApiKeyIntentFact, ...] = ()
    # signer: why it cannot sign for the address, None if fine or absent
    signer_error: str | None = None
    default_key_id: str | None = None  # derived from the onboarding signature; None: not derived
    # The STARK key when Vault holds none: derived from the signer, or not known at all (no
    # signer, a remote signer without ``plan --derive``), when registration and deposits to it
    # could not be read (dYdX knows the user, or could not tell).
    derived_stark_key: DerivedStarkKey | None = None
    stark_key_unknown: bool = False
    # when these facts were read (epoch seconds): the planner's "now" for key ages. Not part
    # of the fingerprint (plan/fingerprint.py): it changes on every look, the world need not.
    observed_at: float | None = field(default=None, compare=False, metadata={"fingerprint": False})

    def api_secret(self, name: str) -> VaultEntry | None:
        return dict(self.api_secrets).get(name)

    @property
    def unsettled(self) -> bool:
        """An interrupted run left journal entries that apply must settle."""
        return bool(self.journal or self.api_key_intents)


@dataclass(frozen=True)
class WorldFacts:
    chain_id: int | None
    accounts: tuple[AccountFacts, ...] = field(default_factory=tuple)
    errors: tuple[str, ...] = ()  # observation failures, e.g. an unreachable service
    # checks an untrusted plan skipped (they need credentials or secret values), each a sentence
    not_checked: tuple[str, ...] = ()

    def account(self, name: str) -> AccountFacts:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(name) from None

    @cached_property
    def _by_name(self) -> dict[str, AccountFacts]:
        """Planning and status look every account up by name, once per account."""
        return {acc.name: acc for acc in self.accounts}
