"""The journal: what a run is about to do, persisted in Vault *before* it does it.

Two kinds of entry:

- ``_senders/<chain_id>/<sender>/<intent>-<nonce>`` (under ``<state_path>/journal/``): a
  transaction (approve, registerUser, deposit), written before it is broadcast, or before
  a remote signer is asked to send it. Indexed by chain and sender address, not by account
  name, so renaming an account cannot hide it (``_`` is never part of an account name).
  The entry is forgotten only once its fate is final: mined with ``confirmations`` blocks
  on top, reverted, or its nonce taken by another transaction. Until then the next run
  waits for it, rebroadcasts the very same signed bytes if the node forgot them (a reorg,
  a lagging node: same nonce, so it can never pay twice), and counts a deposit toward the
  target. An entry without a hash is a request the remote signer has not answered: it
  blocks that sender until its nonce is used or a person resolves it
  (``provision journal resolve``). Signed transactions are not secret.
- ``<account>/api_key-<name>``: the intent to create an API key, with the key ids dYdX
  listed just before ``POST /v3/api-keys`` (and the new key's id once the answer came
  back). If the run dies before the credentials reach Vault, the next run deletes at dYdX
  the key whose id the intent recorded (its secret is gone with the dead process; never the
  default key) and lets the normal step create a fresh one. A key that appeared without a
  recorded id may be someone else's: it is reported and left alone.

No key, secret or passphrase is ever written here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from provisioner.facts import JournalEntry
from provisioner.records import journal_root

API_KEY_INTENT = "api_key"
SENDERS = "_senders"


class _StateStore(Protocol):
    def read_state(self, path: str) -> tuple[dict[str, Any], int] | None: ...
    def write_state(self, path: str, data: dict[str, Any], cas: int) -> int: ...
    def delete_state(self, path: str) -> None: ...
    def list_state(self, prefix: str) -> list[str]: ...


class _ChainView(Protocol):
    def receipt(self, tx_hash: str) -> Any: ...
    def transaction_known(self, tx_hash: str) -> bool: ...
    def transaction_counts(self, address: str) -> tuple[int, int]: ...
    def transaction_count_at(self, address: str, block: int) -> int: ...
    def block_number(self) -> int: ...


@dataclass(frozen=True)
class StoredTx:
    account: str
    intent: str
    nonce: int
    tx_hash: str
    raw_tx: str  # 0x-hex of the signed transaction, "" when a remote signer broadcasts it itself
    amount: int = 0
    sender: str = ""  # the address whose nonce it uses: how a hash-less entry is looked up
    chain_id: int = 0  # 0: an entry of the older layout, under the account's name
    problem: str = ""  # what a person must look at before this sender sends again
    recorded_at: str = ""

    @property
    def key(self) -> str:
        return f"{self.intent}-{self.nonce}"

    @property
    def awaiting_signer(self) -> bool:
        """Journaled before a remote signer was asked to send it; no answer recorded."""
        return not self.tx_hash and not self.raw_tx


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

    Only the key whose id the intent recorded can be an orphan: a key that appeared without
    a recorded id may be one the desk made with its own tools (see ``unexpected_keys``).
    Stored keys and the default key are never orphans.
    """
    now = frozenset(listed_now)
    candidates = {intent.created} if intent.created else set()
    keep = set(stored) | ({default_key} if default_key else set())
    return frozenset(k for k in candidates if k in now and k not in keep)


def unexpected_keys(
    intent: KeyIntent,
    listed_now: Iterable[str],
    stored: Iterable[str],
    default_key: str | None = None,
) -> frozenset[str]:
    """Keys listed now, not before the POST, not stored and not recorded as created by it:
    maybe what the unanswered POST made, maybe the desk's own. Reported, never deleted."""
    keep = set(stored) | ({default_key} if default_key else set()) | {intent.created}
    return frozenset(k for k in listed_now if k not in intent.listed_before and k not in keep)


def sender_folder(state_path: str, chain_id: int, sender: str) -> str:
    """Where the transactions of ``sender`` on ``chain_id`` are journaled."""
    return f"{journal_root(state_path)}/{SENDERS}/{chain_id}/{sender.lower()}"


class Journal:
    def __init__(self, store: _StateStore, state_path: str) -> None:
        self.store = store
        self.root = journal_root(state_path)

    def _path(self, account: str, key: str = "") -> str:
        return f"{self.root}/{account}" + (f"/{key}" if key else "")

    def sender_folder(self, chain_id: int, sender: str) -> str:
        return f"{self.root}/{SENDERS}/{chain_id}/{sender.lower()}"

    def _tx_path(self, tx: StoredTx) -> str:
        if not tx.chain_id:  # the older layout, by account name
            return self._path(tx.account, tx.key)
        return f"{self.sender_folder(tx.chain_id, tx.sender)}/{tx.key}"

    # -- writing -----------------------------------------------------------------------

    def record(self, tx: StoredTx) -> None:
        """Persist before broadcast; check-and-set 0 so a second writer of the same nonce fails loudly."""
        self._write_tx(tx, cas=0)

    def _write_tx(self, tx: StoredTx, cas: int) -> StoredTx:
        """Write ``tx``; the entry as a read would give it back."""
        data = _tx_data(tx)
        self.store.write_state(self._tx_path(tx), data, cas=cas)
        stored = _stored_tx(tx.account, data, tx.chain_id)
        return replace(stored, sender=stored.sender or tx.sender)

    def note_hash(self, tx: StoredTx, tx_hash: str) -> StoredTx:
        """A remote signer broadcast the journaled intent: add the hash it answered."""
        return self._update(replace(tx, tx_hash=tx_hash))

    def note_problem(self, tx: StoredTx, problem: str) -> StoredTx:
        """Something a person must look at: the entry stays and blocks its sender until resolved."""
        return self._update(replace(tx, problem=problem))

    def _update(self, tx: StoredTx) -> StoredTx:
        found = self.store.read_state(self._tx_path(tx))
        self._write_tx(tx, cas=found[1] if found is not None else 0)
        return tx

    def forget_tx(self, tx: StoredTx) -> None:
        self.store.delete_state(self._tx_path(tx))

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
        """Transactions journaled under the account's name (the older layout)."""
        return [e for e in self.read(account) if isinstance(e, StoredTx)]

    def transactions(self, chain_id: int, sender: str, account: str = "") -> list[StoredTx]:
        """Every transaction journaled for ``sender`` on ``chain_id``, whatever account name
        journaled it; with ``account``, also those of the older layout under that name."""
        folder = self.sender_folder(chain_id, sender)
        out: list[StoredTx] = []
        for key in self.store.list_state(folder):
            if key.endswith("/"):
                continue
            found = self.store.read_state(f"{folder}/{key}")
            entry = (
                _entry(str(found[0].get("account", account)), found[0], chain_id)
                if found and found[0]
                else None
            )
            if isinstance(entry, StoredTx):
                out.append(entry)
        if account:
            out += [
                replace(e, sender=e.sender or sender)
                for e in self.entries(account)
                if e.sender.lower() in ("", sender.lower())
            ]
        return sorted(out, key=lambda e: e.nonce)

    def key_intents(self, account: str) -> list[KeyIntent]:
        return [e for e in self.read(account) if isinstance(e, KeyIntent)]

    def accounts(self) -> list[str]:
        """Account names with entries of their own (API key intents, older transactions)."""
        return [
            a.rstrip("/")
            for a in self.store.list_state(self.root)
            if a.endswith("/") and a.rstrip("/") != SENDERS
        ]

    def senders(self, chain_id: int) -> set[str]:
        """Lower-case addresses with journaled transactions on ``chain_id``: one LIST."""
        folder = f"{self.root}/{SENDERS}/{chain_id}"
        return {s.rstrip("/").lower() for s in self.store.list_state(folder) if s.endswith("/")}

    def load(
        self,
        chain: _ChainView,
        accounts: Iterable[tuple[str, str]],
        chain_id: int,
        confirmations: int,
    ) -> dict[str, tuple[tuple[JournalEntry, ...], tuple[KeyIntent, ...]]]:
        """Per (name, address) of ``accounts`` (others may share the state_path): journaled
        transactions with their status on chain, and API key intents. Two LISTs when nothing
        is journaled."""
        wanted = dict(accounts)
        named = set(wanted).intersection(self.accounts())
        senders = self.senders(chain_id)
        result: dict[str, tuple[tuple[JournalEntry, ...], tuple[KeyIntent, ...]]] = {}
        for account, address in sorted(wanted.items()):
            if account not in named and address.lower() not in senders:
                continue
            intents = self.key_intents(account) if account in named else []
            stored = self.transactions(chain_id, address, account if account in named else "")
            txs = tuple(
                JournalEntry(
                    intent=entry.intent,
                    tx_hash=entry.tx_hash,
                    nonce=entry.nonce,
                    amount=entry.amount,
                    status=tx_status(chain, entry, confirmations),
                    journaled_by=entry.account,
                    problem=entry.problem,
                )
                for entry in stored
            )
            if txs or intents:
                result[account] = (txs, tuple(intents))
        return result


class HeldJournal(Journal):
    """The journal as a run that holds its senders' locks sees it (apply/lock.py): nobody else
    journals for those senders meanwhile, so each sender's transactions are read once, then
    kept up to date by this object's own writes instead of read again before every
    transaction. ``empty``: the (chain_id, sender, account) views the run already knows hold
    nothing (from the LISTs it made under the locks). Thread-safe."""

    def __init__(
        self,
        store: _StateStore,
        state_path: str,
        *,
        empty: Iterable[tuple[int, str, str]] = (),
    ) -> None:
        super().__init__(store, state_path)
        self._guard = threading.Lock()
        self._views: dict[tuple[int, str, str], dict[str, StoredTx]] = {
            (chain_id, sender.lower(), account): {} for chain_id, sender, account in empty
        }

    def transactions(self, chain_id: int, sender: str, account: str = "") -> list[StoredTx]:
        key = (chain_id, sender.lower(), account)
        with self._guard:
            view = self._views.get(key)
        if view is None:
            read = {self._tx_path(tx): tx for tx in super().transactions(chain_id, sender, account)}
            with self._guard:
                view = self._views.setdefault(key, read)
        with self._guard:
            return sorted(view.values(), key=lambda e: e.nonce)

    def _write_tx(self, tx: StoredTx, cas: int) -> StoredTx:
        try:
            stored = super()._write_tx(tx, cas)
        except BaseException:
            self._unknown(tx)
            raise
        path = self._tx_path(tx)
        with self._guard:
            for key, view in self._views.items():
                if self._holds(key, view, tx, path):
                    view[path] = stored
        return stored

    def forget_tx(self, tx: StoredTx) -> None:
        try:
            super().forget_tx(tx)
        except BaseException:
            self._unknown(tx)
            raise
        path = self._tx_path(tx)
        with self._guard:
            for view in self._views.values():
                view.pop(path, None)

    def _holds(
        self, key: tuple[int, str, str], view: dict[str, StoredTx], tx: StoredTx, path: str
    ) -> bool:
        """Whether the view ``key`` shows ``tx`` (at ``path``) once it is written."""
        chain_id, sender, _account = key
        return path in view or (chain_id == tx.chain_id and sender == tx.sender.lower())

    def _unknown(self, tx: StoredTx) -> None:
        """A write or delete of ``tx`` failed: it may have landed or not (a timeout), and a
        check-and-set conflict means an entry this view never saw. The views that would show
        it are dropped, to be read again from Vault by the next ``transactions``."""
        path = self._tx_path(tx)
        with self._guard:
            for key in [k for k, v in self._views.items() if self._holds(k, v, tx, path)]:
                del self._views[key]


# Statuses of a journaled transaction; only the FINAL ones let its entry be forgotten.
CONFIRMED = "confirmed"  # mined, ``confirmations`` blocks on top
MINED = "mined"  # mined, fewer blocks on top: a reorg may still take it away
FAILED = "failed"  # mined and reverted
SUPERSEDED = "superseded"  # its nonce was used by another transaction: it can never land
PENDING = "pending"  # in the node's pool
DROPPED = "dropped"  # unknown to the node; signed bytes (if any) can be sent again
AWAITING = "awaiting"  # a remote signer was asked to send it and never said what it did
FINAL = frozenset({CONFIRMED, FAILED, SUPERSEDED})


def tx_status(chain: _ChainView, tx: StoredTx, confirmations: int = 0) -> str:
    """What became of a journaled transaction (see the statuses above).

    An entry without a hash was journaled before a remote signer was asked to broadcast it:
    only its nonce tells. Used on chain with ``confirmations`` blocks on top: confirmed
    (if it was ours, its deposit is in the events); used, fewer blocks: mined; in the pool:
    pending; still free: awaiting the signer, which may still send it, with this nonce or
    another, so the entry stays and the sender sends nothing new until it is resolved.
    """
    if not tx.tx_hash:
        latest, pending = chain.transaction_counts(tx.sender)
        if latest > tx.nonce:
            head = chain.block_number()
            settled = chain.transaction_count_at(tx.sender, max(head - confirmations, 0))
            return CONFIRMED if settled > tx.nonce else MINED
        return PENDING if pending > tx.nonce else AWAITING
    receipt = chain.receipt(tx.tx_hash)
    if receipt is not None:
        if receipt.status != 1:
            return FAILED
        return CONFIRMED if chain.block_number() - receipt.block_number >= confirmations else MINED
    if chain.transaction_known(tx.tx_hash):
        return PENDING
    latest, _pending = chain.transaction_counts(tx.sender) if tx.sender else (0, 0)
    return SUPERSEDED if tx.sender and latest > tx.nonce else DROPPED


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


def _tx_data(tx: StoredTx) -> dict[str, Any]:
    return {
        "account": tx.account,
        "intent": tx.intent,
        "nonce": tx.nonce,
        "tx_hash": tx.tx_hash,
        "raw_tx": tx.raw_tx,
        "amount": str(tx.amount),
        "sender": tx.sender,
        "problem": tx.problem,
        "recorded_at": tx.recorded_at or str(int(time.time())),
    }


def _entry(account: str, data: dict[str, Any], chain_id: int = 0) -> Entry:
    if data.get("intent") == API_KEY_INTENT:
        listed = data.get("listed_before") or []
        return KeyIntent(
            account=account,
            name=str(data["name"]),
            path=str(data["path"]),
            listed_before=frozenset(str(k) for k in listed),
            created=str(data["created"]) if data.get("created") else None,
        )
    return _stored_tx(account, data, chain_id)


def _stored_tx(account: str, data: dict[str, Any], chain_id: int) -> StoredTx:
    return StoredTx(
        account=account,
        intent=str(data["intent"]),
        nonce=int(data["nonce"]),
        tx_hash=str(data["tx_hash"]),
        raw_tx=str(data.get("raw_tx", "")),
        amount=int(data.get("amount", 0)),
        sender=str(data.get("sender", "")),
        chain_id=chain_id,
        problem=str(data.get("problem", "")),
        recorded_at=str(data.get("recorded_at", "")),
    )
