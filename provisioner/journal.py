"""The transaction journal: signed transactions persisted in Vault *before* they are broadcast.

A crash between signing and seeing the receipt leaves an entry under
``<state_path>/journal/<account>/<intent>-<nonce>``. The next run finds it, asks
the chain what became of the hash, rebroadcasts the very same signed bytes if
the node forgot them (same nonce, so it can never pay twice) and only then
cleans the entry up. Pending deposits in the journal count toward the target.
Signed transactions are not secret (they are meant to be broadcast); no key is
ever written here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from provisioner.facts import JournalEntry


class _StateStore(Protocol):
    def read_state(self, path: str) -> tuple[dict[str, Any], int] | None: ...
    def write_state(self, path: str, data: dict[str, Any], cas: int) -> int: ...
    def delete_state(self, path: str) -> None: ...
    def list_state(self, prefix: str) -> list[str]: ...


class _ChainView(Protocol):
    def receipt(self, tx_hash: str) -> Any: ...
    def transaction_known(self, tx_hash: str) -> bool: ...


@dataclass(frozen=True)
class StoredTx:
    account: str
    intent: str
    nonce: int
    tx_hash: str
    raw_tx: str  # 0x-hex of the signed transaction, "" when a remote signer broadcast it itself
    amount: int = 0

    @property
    def key(self) -> str:
        return f"{self.intent}-{self.nonce}"


class Journal:
    def __init__(self, store: _StateStore, state_path: str) -> None:
        self.store = store
        self.root = f"{state_path}/journal"

    def _path(self, account: str, key: str = "") -> str:
        return f"{self.root}/{account}" + (f"/{key}" if key else "")

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
                "recorded_at": str(int(time.time())),
            },
            cas=0,
        )

    def forget(self, account: str, key: str) -> None:
        self.store.delete_state(self._path(account, key))

    def entries(self, account: str) -> list[StoredTx]:
        out = []
        for key in self.store.list_state(self._path(account)):
            found = self.store.read_state(self._path(account, key.rstrip("/")))
            if found is None:
                continue
            data, _version = found
            out.append(
                StoredTx(
                    account=account,
                    intent=str(data["intent"]),
                    nonce=int(data["nonce"]),
                    tx_hash=str(data["tx_hash"]),
                    raw_tx=str(data.get("raw_tx", "")),
                    amount=int(data.get("amount", 0)),
                )
            )
        return out

    def accounts(self) -> list[str]:
        return [a.rstrip("/") for a in self.store.list_state(self.root)]

    def pending_by_account(self, chain: _ChainView) -> dict[str, tuple[JournalEntry, ...]]:
        """Journal entries with their status on chain: mined | failed | pending | dropped."""
        result: dict[str, tuple[JournalEntry, ...]] = {}
        for account in self.accounts():
            entries = []
            for tx in self.entries(account):
                entries.append(
                    JournalEntry(
                        intent=tx.intent,
                        tx_hash=tx.tx_hash,
                        nonce=tx.nonce,
                        amount=tx.amount,
                        status=tx_status(chain, tx.tx_hash),
                    )
                )
            if entries:
                result[account] = tuple(entries)
        return result


def tx_status(chain: _ChainView, tx_hash: str) -> str:
    receipt = chain.receipt(tx_hash)
    if receipt is not None:
        return "mined" if receipt.status == 1 else "failed"
    return "pending" if chain.transaction_known(tx_hash) else "dropped"
