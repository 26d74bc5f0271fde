"""The emulator's state in one SQLite file (WAL), so it survives a restart or a kill.

Two kinds of state live here:

- what dYdX owned: users, their accounts (position ids) and API keys. ``reset``
  wipes these;
- what the chain said: ``LogUserRegistered`` and ``LogDeposit`` events and the
  follower's cursor. These are facts about the chain, kept across ``reset`` and
  dropped only when the chain itself is replaced (see chain_follower).

Position ids come from a counter that never goes back, not even on ``reset``, so
a deposit made on chain for an earlier user is never credited to a later one.
Transfers are not stored apart: a deposit is shown to the account whose STARK key
and position id it names.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from provisioner.sandbox.emulator.config import MAX_API_KEYS_PER_USER
from provisioner.sandbox.emulator.credentials import ApiKeyCredentials

POSITION_ID_BASE = 100_000
_INT64_MAX = 2**63 - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    address TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    referred_by TEXT,
    country TEXT
);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    account_number INTEGER NOT NULL,
    position_id INTEGER NOT NULL UNIQUE,
    stark_key TEXT NOT NULL UNIQUE,
    stark_key_y TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (address, account_number)
);
CREATE TABLE IF NOT EXISTS api_keys (
    key TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    secret TEXT NOT NULL,
    passphrase TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_by_address ON api_keys (address, created_at);
CREATE TABLE IF NOT EXISTS chain_registrations (
    stark_key TEXT PRIMARY KEY,
    eth_address TEXT NOT NULL,
    block_number INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_deposits (
    id TEXT PRIMARY KEY,
    tx_hash TEXT NOT NULL,
    log_index INTEGER NOT NULL,
    block_number INTEGER NOT NULL,
    depositor TEXT NOT NULL,
    stark_key TEXT NOT NULL,
    vault_id INTEGER NOT NULL,
    quantized TEXT NOT NULL,
    created_at TEXT NOT NULL,
    confirmed_at TEXT
);
CREATE INDEX IF NOT EXISTS deposits_by_position ON chain_deposits (stark_key, vault_id);
CREATE INDEX IF NOT EXISTS deposits_pending ON chain_deposits (confirmed_at, block_number);
"""


class UserExists(Exception):
    pass


class StarkKeyInUse(Exception):
    pass


class TooManyApiKeys(Exception):
    pass


class LastApiKey(Exception):
    pass


class ApiKeyMissing(Exception):
    pass


@dataclass(frozen=True)
class User:
    address: str
    created_at: str
    referred_by: str | None
    country: str | None


@dataclass(frozen=True)
class Account:
    id: str
    address: str
    account_number: int
    position_id: int
    stark_key: str  # 64 hex digits, no 0x
    stark_key_y: str
    created_at: str


@dataclass(frozen=True)
class StoredApiKey:
    key: str
    address: str
    secret: str
    passphrase: str

    def __repr__(self) -> str:
        return f"StoredApiKey(key={self.key!r}, address={self.address!r}, secret=<redacted>)"


@dataclass(frozen=True)
class Deposit:
    id: str
    tx_hash: str
    log_index: int
    block_number: int
    depositor: str
    stark_key: str
    vault_id: int
    quantized: int
    created_at: str
    confirmed_at: str | None


@dataclass(frozen=True)
class ChainCursor:
    block_number: int
    block_hash: str


class Store:
    """All reads and writes of emulator state; one connection, used from the event loop only."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- meta --------------------------------------------------------------------------
    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # -- users and accounts ------------------------------------------------------------
    def user(self, address: str) -> User | None:
        row = self._db.execute(
            "SELECT address, created_at, referred_by, country FROM users WHERE address = ?",
            (address,),
        ).fetchone()
        return None if row is None else User(*row)

    def onboard(
        self,
        *,
        address: str,
        account_id: str,
        stark_key: str,
        stark_key_y: str,
        api_key: ApiKeyCredentials,
        referred_by: str | None,
        country: str | None,
        now: str,
    ) -> tuple[User, Account]:
        """Create user, account 0 and the default API key in one transaction (all or nothing)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM users WHERE address = ?", (address,)).fetchone():
                raise UserExists(address)
            if db.execute("SELECT 1 FROM accounts WHERE stark_key = ?", (stark_key,)).fetchone():
                raise StarkKeyInUse(stark_key)
            position_id = int(self._meta("next_position_id") or POSITION_ID_BASE)
            self._set_meta("next_position_id", str(position_id + 1))
            db.execute(
                "INSERT INTO users (address, created_at, referred_by, country) VALUES (?, ?, ?, ?)",
                (address, now, referred_by, country),
            )
            db.execute(
                "INSERT INTO accounts (id, address, account_number, position_id, stark_key, stark_key_y, created_at)"
                " VALUES (?, ?, 0, ?, ?, ?, ?)",
                (account_id, address, position_id, stark_key, stark_key_y, now),
            )
            db.execute(
                "INSERT OR REPLACE INTO api_keys (key, address, secret, passphrase, created_at) VALUES (?, ?, ?, ?, ?)",
                (api_key.key, address, api_key.secret, api_key.passphrase, now),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return User(address, now, referred_by, country), Account(
            account_id, address, 0, position_id, stark_key, stark_key_y, now
        )

    _ACCOUNT_COLUMNS = (
        "id, address, account_number, position_id, stark_key, stark_key_y, created_at"
    )

    def account(self, account_id: str) -> Account | None:
        row = self._db.execute(
            f"SELECT {self._ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,)
        ).fetchone()
        return None if row is None else Account(*row)

    def accounts_of(self, address: str) -> list[Account]:
        rows = self._db.execute(
            f"SELECT {self._ACCOUNT_COLUMNS} FROM accounts WHERE address = ? ORDER BY account_number",
            (address,),
        ).fetchall()
        return [Account(*row) for row in rows]

    def account_by_number(self, address: str, account_number: int) -> Account | None:
        row = self._db.execute(
            f"SELECT {self._ACCOUNT_COLUMNS} FROM accounts WHERE address = ? AND account_number = ?",
            (address, account_number),
        ).fetchone()
        return None if row is None else Account(*row)

    # -- API keys ----------------------------------------------------------------------
    def api_key(self, key: str) -> StoredApiKey | None:
        row = self._db.execute(
            "SELECT key, address, secret, passphrase FROM api_keys WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else StoredApiKey(*row)

    def api_keys_of(self, address: str) -> list[str]:
        rows = self._db.execute(
            "SELECT key FROM api_keys WHERE address = ? ORDER BY created_at, rowid", (address,)
        ).fetchall()
        return [str(row[0]) for row in rows]

    def add_api_key(self, address: str, creds: ApiKeyCredentials, now: str) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM api_keys WHERE address = ?", (address,)
            ).fetchone()
            if count >= MAX_API_KEYS_PER_USER:
                raise TooManyApiKeys(address)
            db.execute(
                "INSERT INTO api_keys (key, address, secret, passphrase, created_at) VALUES (?, ?, ?, ?, ?)",
                (creds.key, address, creds.secret, creds.passphrase, now),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def delete_api_key(self, address: str, key: str) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if not db.execute(
                "SELECT 1 FROM api_keys WHERE key = ? AND address = ?", (key, address)
            ).fetchone():
                raise ApiKeyMissing(key)
            (count,) = db.execute(
                "SELECT COUNT(*) FROM api_keys WHERE address = ?", (address,)
            ).fetchone()
            if count <= 1:
                raise LastApiKey(key)
            db.execute("DELETE FROM api_keys WHERE key = ?", (key,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # -- chain facts -------------------------------------------------------------------
    def chain_cursor(self) -> ChainCursor | None:
        number, block_hash = self._meta("chain_block"), self._meta("chain_block_hash")
        if number is None or block_hash is None:
            return None
        return ChainCursor(int(number), block_hash)

    def save_chain_batch(
        self,
        cursor: ChainCursor,
        registrations: list[tuple[str, str, int]],
        deposits: list[Deposit],
    ) -> None:
        """Record one scanned block range and move the cursor past it, atomically."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO chain_registrations (stark_key, eth_address, block_number) VALUES (?, ?, ?)",
                registrations,
            )
            db.executemany(
                "INSERT OR IGNORE INTO chain_deposits (id, tx_hash, log_index, block_number, depositor, stark_key,"
                " vault_id, quantized, created_at, confirmed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        d.id,
                        d.tx_hash,
                        d.log_index,
                        d.block_number,
                        d.depositor,
                        d.stark_key,
                        d.vault_id,
                        str(d.quantized),
                        d.created_at,
                        d.confirmed_at,
                    )
                    for d in deposits
                    if 0 <= d.vault_id <= _INT64_MAX
                ],
            )
            self._set_meta("chain_block", str(cursor.block_number))
            self._set_meta("chain_block_hash", cursor.block_hash)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def confirm_deposits(self, up_to_block: int, now: str) -> int:
        cur = self._db.execute(
            "UPDATE chain_deposits SET confirmed_at = ? WHERE confirmed_at IS NULL AND block_number <= ?",
            (now, up_to_block),
        )
        return cur.rowcount

    def forget_chain(self) -> None:
        """Drop every chain fact: the chain they came from is gone (restarted or rewound)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM chain_registrations")
        db.execute("DELETE FROM chain_deposits")
        db.execute("DELETE FROM meta WHERE name IN ('chain_block', 'chain_block_hash')")
        db.execute("COMMIT")

    def registered_eth_address(self, stark_key: str) -> str | None:
        row = self._db.execute(
            "SELECT eth_address FROM chain_registrations WHERE stark_key = ?", (stark_key,)
        ).fetchone()
        return None if row is None else str(row[0])

    _DEPOSIT_COLUMNS = (
        "d.id, d.tx_hash, d.log_index, d.block_number, d.depositor, d.stark_key, d.vault_id, d.quantized,"
        " d.created_at, d.confirmed_at"
    )

    @staticmethod
    def _deposit(row: tuple[object, ...]) -> Deposit:
        values = list(row)
        values[7] = int(str(values[7]))
        return Deposit(*values)  # type: ignore[arg-type]

    def deposits_for_position(self, stark_key: str, position_id: int) -> list[Deposit]:
        rows = self._db.execute(
            f"SELECT {self._DEPOSIT_COLUMNS} FROM chain_deposits d WHERE d.stark_key = ? AND d.vault_id = ?",
            (stark_key, position_id),
        ).fetchall()
        return [self._deposit(row) for row in rows]

    def deposits_of_user(
        self, address: str, created_before_or_at: str | None, limit: int
    ) -> list[Deposit]:
        sql = (
            f"SELECT {self._DEPOSIT_COLUMNS} FROM chain_deposits d JOIN accounts a"
            " ON d.stark_key = a.stark_key AND d.vault_id = a.position_id WHERE a.address = ?"
        )
        args: list[object] = [address]
        if created_before_or_at is not None:
            sql += " AND d.created_at <= ?"
            args.append(created_before_or_at)
        sql += " ORDER BY d.created_at DESC, d.block_number DESC, d.log_index DESC LIMIT ?"
        args.append(limit)
        return [self._deposit(row) for row in self._db.execute(sql, args).fetchall()]

    # -- admin -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every user, account and API key (chain facts and the position counter stay)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM api_keys")
        db.execute("DELETE FROM accounts")
        db.execute("DELETE FROM users")
        db.execute("COMMIT")
