"""The journal: what a run is about to do, persisted in Vault *before* it does it.

Two kinds of entry live under ``<state_path>/journal/<account>/``:

- ``<intent>-<nonce>``: a signed transaction (approve, registerUser, deposit), written
  before it is broadcast. A crash between signing and seeing the receipt leaves it
  behind; the next run asks the chain what became of the hash, rebroadcasts the very
  same signed bytes if the node forgot them (same nonce, so it can never pay twice) and
  only then forgets the entry. Pending deposits in the journal count toward the target.
  Signed transactions are not secret (they are meant to be broadcast).
- ``api_key-<name>``: the intent to create an API key, with the key ids dYdX listed just
  before ``POST /v3/api-keys`` (and the new key's id once the answer came back). If the
  run dies before the credentials reach Vault, the next run finds the key dYdX has that
  Vault does not (an orphan: its secret is gone with the dead process), deletes it at
  dYdX (never the default key) and lets the normal step create a fresh one.

No key, secret or passphrase is ever written here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from provisioner.facts import JournalEntry
from provisioner.records import journal_root

API_KEY_INTENT = "api_key"


class _StateStore(Protocol):
    def read_state(self, path: str) -> tuple[dict[str, Any], int] | None: ...
    def write_state(self, path: str, data: dict[str, Any], cas: int) -> int: ...
    def delete_state(self, path: str) -> None: ...
    def list_state(self, prefix: str) -> list[str]: ...


class _ChainView(Protocol):
    def receipt(self, tx_hash: str) -> Any: ...
    def transaction_known(self, tx_hash: str) -> bool: ...
    def transaction_counts(self, address: str) -> tuple[int, int]: ...


@dataclass(frozen=True)
class StoredTx:
    account: str
    intent: str
    nonce: int
    tx_hash: str
    raw_tx: str  # 0x-hex of the signed transaction, "" when a remote signer broadcasts it itself
    amount: int = 0
    sender: str = ""  # the address whose nonce it uses: how a hash-less entry is looked up

    @property
    def key(self) -> str:
        return f"{self.intent}-{self.nonce}"


@dataclass(frozen=True)
class KeyIntent:
    """``POST /v3/api-keys`` is about to be (or was) sent for the manifest key ``name``."""

    account: str
    name: str
    path: str  # the Vault destination its credentials go to
    listed_before: frozenset[str]  # key ids dYdX listed for the user just before the POST
    created: str | None = None  # the new key's id, once dYdX answered

    @property
    def key(self) -> str:
        return f"{API_KEY_INTENT}-{self.name}"


Entry = StoredTx | KeyIntent


def key_orphans(
    intent: KeyIntent,
    listed_now: Iterable[str],
    stored: Iterable[str],
    default_key: str | None = None,
) -> frozenset[str]:
    """Keys dYdX lists that this intent created and Vault does not hold: their secret is lost.

    With the created id known, only that key can be the orphan; otherwise every key listed
    now but not before the POST. Stored keys and the default key are never orphans.
    """
    now = frozenset(listed_now)
    candidates = {intent.created} if intent.created else now - intent.listed_before
    keep = set(stored) | ({default_key} if default_key else set())
    return frozenset(k for k in candidates if k in now and k not in keep)


class Journal:
    def __init__(self, store: _StateStore, state_path: str) -> None:
        self.store = store
        self.root = journal_root(state_path)

    def _path(self, account: str, key: str = "") -> str:
        return f"{self.root}/{account}" + (f"/{key}" if key else "")

    # -- writing -----------------------------------------------------------------------

    def record(self, tx: StoredTx) -> None:
        """Persist before broadcast; check-and-set 0 so a second writer of the same nonce fails loudly."""
        self.store.write_state(
            self._path(tx.account, tx.key),
            {
                "intent": tx.intent,
                "nonce": tx.nonce,
                "tx_hash": tx.tx_hash,
                "raw_tx": tx.raw_tx,
                "amount": str(tx.amount),
                "sender": tx.sender,
                "recorded_at": str(int(time.time())),
            },
            cas=0,
        )

    def note_hash(self, tx: StoredTx, tx_hash: str) -> StoredTx:
        """A remote signer broadcast the journaled intent: add the hash it answered."""
        path = self._path(tx.account, tx.key)
        found = self.store.read_state(path)
        data, version = found if found is not None else ({}, 0)
        self.store.write_state(path, {**data, "tx_hash": tx_hash}, cas=version)
        return replace(tx, tx_hash=tx_hash)

    def record_key_intent(self, intent: KeyIntent) -> None:
        """Persist before ``POST /v3/api-keys``; check-and-set 0: an unsettled intent must be settled first."""
        self.store.write_state(self._path(intent.account, intent.key), _intent_data(intent), cas=0)

    def note_created(self, intent: KeyIntent, key_id: str) -> KeyIntent:
        """Add the new key's id to the intent, so that only this key can ever be taken for an orphan."""
        path = self._path(intent.account, intent.key)
        found = self.store.read_state(path)
        version = found[1] if found is not None else 0
        updated = replace(intent, created=key_id)
        self.store.write_state(path, _intent_data(updated), cas=version)
        return updated

    def forget(self, account: str, key: str) -> None:
        self.store.delete_state(self._path(account, key))

    # -- reading -----------------------------------------------------------------------

    def read(self, account: str) -> list[Entry]:
        """Every entry of ``account``, transactions and API key intents."""
        out: list[Entry] = []
        for key in self.store.list_state(self._path(account)):
            if key.endswith("/"):
                continue
            found = self.store.read_state(self._path(account, key))
            if found is None or not found[0]:
                continue
            out.append(_entry(account, found[0]))
        return out

    def entries(self, account: str) -> list[StoredTx]:
        return [e for e in self.read(account) if isinstance(e, StoredTx)]

    def key_intents(self, account: str) -> list[KeyIntent]:
        return [e for e in self.read(account) if isinstance(e, KeyIntent)]

    def accounts(self) -> list[str]:
        return [a.rstrip("/") for a in self.store.list_state(self.root) if a.endswith("/")]

    def load(
        self, chain: _ChainView, accounts: Iterable[str]
    ) -> dict[str, tuple[tuple[JournalEntry, ...], tuple[KeyIntent, ...]]]:
        """Per account of ``accounts`` (others may share the state_path): journaled transactions
        with their status on chain, and API key intents. One LIST when nothing is journaled."""
        wanted = set(accounts)
        result: dict[str, tuple[tuple[JournalEntry, ...], tuple[KeyIntent, ...]]] = {}
        for account in sorted(wanted.intersection(self.accounts())):
            txs: list[JournalEntry] = []
            intents: list[KeyIntent] = []
            for entry in self.read(account):
                if isinstance(entry, KeyIntent):
                    intents.append(entry)
                    continue
                txs.append(
                    JournalEntry(
                        intent=entry.intent,
                        tx_hash=entry.tx_hash,
                        nonce=entry.nonce,
                        amount=entry.amount,
                        status=tx_status(chain, entry),
                    )
                )
            if txs or intents:
                result[account] = (tuple(txs), tuple(intents))
        return result


def tx_status(chain: _ChainView, tx: StoredTx) -> str:
    """mined | failed (mined, reverted) | pending (in the node's pool) | dropped (unknown to the
    node; its signed bytes can be sent again) | unsent.

    An entry without a hash was journaled before a remote signer broadcast it (and the run
    died before the answer): its nonce tells. Used on chain: mined (if it was ours, its
    deposit is in the events); in the pool: pending; still free: unsent. An unsent entry is
    not counted as pending: the next transaction of that sender takes that same nonce, so
    even if the signer still broadcasts the old one later, at most one of them can land.
    """
    if not tx.tx_hash:
        latest, pending = chain.transaction_counts(tx.sender)
        if latest > tx.nonce:
            return "mined"
        return "pending" if pending > tx.nonce else "unsent"
    receipt = chain.receipt(tx.tx_hash)
    if receipt is not None:
        return "mined" if receipt.status == 1 else "failed"
    return "pending" if chain.transaction_known(tx.tx_hash) else "dropped"


def _intent_data(intent: KeyIntent) -> dict[str, Any]:
    data: dict[str, Any] = {
        "intent": API_KEY_INTENT,
        "name": intent.name,
        "path": intent.path,
        "listed_before": sorted(intent.listed_before),
        "recorded_at": str(int(time.time())),
    }
    if intent.created:
        data["created"] = intent.created
    return data


def _entry(account: str, data: dict[str, Any]) -> Entry:
    if data.get("intent") == API_KEY_INTENT:
        listed = data.get("listed_before") or []
        return KeyIntent(
            account=account,
            name=str(data["name"]),
            path=str(data["path"]),
            listed_before=frozenset(str(k) for k in listed),
            created=str(data["created"]) if data.get("created") else None,
        )
    return StoredTx(
        account=account,
        intent=str(data["intent"]),
        nonce=int(data["nonce"]),
        tx_hash=str(data["tx_hash"]),
        raw_tx=str(data.get("raw_tx", "")),
        amount=int(data.get("amount", 0)),
        sender=str(data.get("sender", "")),
    )
