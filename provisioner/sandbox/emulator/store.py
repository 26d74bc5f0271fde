"""The emulator's state in one SQLite file (WAL), so it survives a restart or a kill.

Two kinds of state live here:

- what dYdX owned: users (and their profiles), accounts (position ids), API
  keys, orders and withdrawals. ``reset`` wipes these;
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
from collections.abc import Callable
from dataclasses import astuple, dataclass, replace
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
CREATE TABLE IF NOT EXISTS user_profiles (
    address TEXT PRIMARY KEY,
    email TEXT,
    username TEXT UNIQUE,
    user_data TEXT NOT NULL,
    is_sharing_username INTEGER NOT NULL,
    is_sharing_address INTEGER NOT NULL,
    language_code TEXT
);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    market TEXT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    size TEXT NOT NULL,
    remaining_size TEXT NOT NULL,
    price TEXT NOT NULL,
    trigger_price TEXT,
    trailing_percent TEXT,
    limit_fee TEXT NOT NULL,
    time_in_force TEXT NOT NULL,
    post_only INTEGER NOT NULL,
    reduce_only INTEGER NOT NULL,
    status TEXT NOT NULL,
    cancel_reason TEXT,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    unfillable_at TEXT,
    margin_units TEXT NOT NULL,
    UNIQUE (account_id, client_id)
);
CREATE INDEX IF NOT EXISTS orders_by_account ON orders (account_id, created_at);
CREATE INDEX IF NOT EXISTS orders_by_expiry ON orders (status, expires_at);
CREATE TABLE IF NOT EXISTS withdrawals (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    type TEXT NOT NULL,
    debit_units TEXT NOT NULL,
    credit_asset TEXT NOT NULL,
    credit_units TEXT NOT NULL,
    client_id TEXT NOT NULL,
    to_address TEXT NOT NULL,
    lp_position_id INTEGER,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (account_id, client_id)
);
CREATE INDEX IF NOT EXISTS withdrawals_by_account ON withdrawals (account_id, created_at);
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


class ClientIdInUse(Exception):
    """An order or withdrawal whose clientId the account already used."""


class UsernameTaken(Exception):
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
class Profile:
    email: str | None
    username: str | None
    user_data: str  # a JSON object, as the client sent it
    is_sharing_username: bool
    is_sharing_address: bool
    language_code: str | None


EMPTY_PROFILE = Profile(None, None, "{}", False, False, None)


@dataclass(frozen=True)
class Order:
    id: str
    account_id: str
    client_id: str
    market: str
    side: str
    type: str
    size: str
    remaining_size: str
    price: str
    trigger_price: str | None
    trailing_percent: str | None
    limit_fee: str
    time_in_force: str
    post_only: bool
    reduce_only: bool
    status: str
    cancel_reason: str | None
    expires_at: str
    created_at: str
    unfillable_at: str | None
    margin_units: int  # initial margin the order holds while open, USDC base units


@dataclass(frozen=True)
class Withdrawal:
    id: str
    account_id: str
    type: str  # WITHDRAWAL or FAST_WITHDRAWAL
    debit_units: int
    credit_asset: str
    credit_units: int
    client_id: str
    to_address: str
    lp_position_id: int | None
    status: str
    created_at: str


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

    def add_account(
        self,
        *,
        address: str,
        account_id_of: Callable[[int], str],
        stark_key: str,
        stark_key_y: str,
        now: str,
    ) -> Account:
        """The user's next account (number max + 1) with a fresh position id."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM accounts WHERE stark_key = ?", (stark_key,)).fetchone():
                raise StarkKeyInUse(stark_key)
            (top,) = db.execute(
                "SELECT MAX(account_number) FROM accounts WHERE address = ?", (address,)
            ).fetchone()
            number = 0 if top is None else int(top) + 1
            position_id = int(self._meta("next_position_id") or POSITION_ID_BASE)
            self._set_meta("next_position_id", str(position_id + 1))
            account = Account(
                account_id_of(number), address, number, position_id, stark_key, stark_key_y, now
            )
            db.execute(
                "INSERT INTO accounts (id, address, account_number, position_id, stark_key, stark_key_y, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (account.id, address, number, position_id, stark_key, stark_key_y, now),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return account

    # -- profiles ----------------------------------------------------------------------
    def profile(self, address: str) -> Profile:
        row = self._db.execute(
            "SELECT email, username, user_data, is_sharing_username, is_sharing_address, language_code"
            " FROM user_profiles WHERE address = ?",
            (address,),
        ).fetchone()
        if row is None:
            return EMPTY_PROFILE
        return Profile(row[0], row[1], row[2], bool(row[3]), bool(row[4]), row[5])

    def save_profile(self, address: str, profile: Profile, country: str | None) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if (
                profile.username is not None
                and db.execute(
                    "SELECT 1 FROM user_profiles WHERE username = ? AND address != ?",
                    (profile.username, address),
                ).fetchone()
            ):
                raise UsernameTaken(profile.username)
            db.execute(
                "INSERT OR REPLACE INTO user_profiles (address, email, username, user_data,"
                " is_sharing_username, is_sharing_address, language_code) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    address,
                    profile.email,
                    profile.username,
                    profile.user_data,
                    int(profile.is_sharing_username),
                    int(profile.is_sharing_address),
                    profile.language_code,
                ),
            )
            db.execute("UPDATE users SET country = ? WHERE address = ?", (country, address))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # -- orders ------------------------------------------------------------------------
    _ORDER_COLUMNS = (
        "id, account_id, client_id, market, side, type, size, remaining_size, price, trigger_price,"
        " trailing_percent, limit_fee, time_in_force, post_only, reduce_only, status, cancel_reason,"
        " expires_at, created_at, unfillable_at, margin_units"
    )

    @staticmethod
    def _order(row: tuple[object, ...]) -> Order:
        values = list(row)
        values[13], values[14] = bool(values[13]), bool(values[14])
        values[20] = int(str(values[20]))
        return Order(*values)  # type: ignore[arg-type]

    def add_order(self, order: Order) -> None:
        values = list(astuple(order))
        values[13], values[14] = int(order.post_only), int(order.reduce_only)
        values[20] = str(order.margin_units)
        try:
            self._db.execute(
                f"INSERT INTO orders ({self._ORDER_COLUMNS}) VALUES ({', '.join('?' * len(values))})",
                values,
            )
        except sqlite3.IntegrityError:
            raise ClientIdInUse(order.client_id) from None

    def order(self, order_id: str) -> Order | None:
        row = self._db.execute(
            f"SELECT {self._ORDER_COLUMNS} FROM orders WHERE id = ?", (order_id,)
        ).fetchone()
        return None if row is None else self._order(row)

    def order_by_client_id(self, account_id: str, client_id: str) -> Order | None:
        row = self._db.execute(
            f"SELECT {self._ORDER_COLUMNS} FROM orders WHERE account_id = ? AND client_id = ?",
            (account_id, client_id),
        ).fetchone()
        return None if row is None else self._order(row)

    def orders_of(
        self,
        account_id: str,
        *,
        filters: dict[str, str],
        created_before_or_at: str | None,
        limit: int,
        latest_first: bool,
    ) -> list[Order]:
        sql = f"SELECT {self._ORDER_COLUMNS} FROM orders WHERE account_id = ?"
        args: list[object] = [account_id]
        for column, value in filters.items():
            assert column in ("market", "status", "side", "type")
            sql += f" AND {column} = ?"
            args.append(value)
        if created_before_or_at is not None:
            sql += " AND created_at <= ?"
            args.append(created_before_or_at)
        direction = "DESC" if latest_first else "ASC"
        sql += f" ORDER BY created_at {direction}, rowid {direction} LIMIT ?"
        args.append(limit)
        return [self._order(row) for row in self._db.execute(sql, args).fetchall()]

    def cancel_orders(
        self, account_id: str, market: str | None, order_id: str | None, now: str
    ) -> list[Order]:
        """Cancel the account's open orders (all, one market's, or one); returns them as canceled."""
        sql = f"SELECT {self._ORDER_COLUMNS} FROM orders WHERE account_id = ? AND status IN ('PENDING', 'OPEN', 'UNTRIGGERED')"
        args: list[object] = [account_id]
        if market is not None:
            sql += " AND market = ?"
            args.append(market)
        if order_id is not None:
            sql += " AND id = ?"
            args.append(order_id)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            orders = [
                self._order(row) for row in db.execute(sql + " ORDER BY created_at, rowid", args)
            ]
            db.executemany(
                "UPDATE orders SET status = 'CANCELED', cancel_reason = 'USER_CANCELED', unfillable_at = ? WHERE id = ?",
                [(now, o.id) for o in orders],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return [
            replace(o, status="CANCELED", cancel_reason="USER_CANCELED", unfillable_at=now)
            for o in orders
        ]

    def expire_orders(self, now: str) -> None:
        active = "status IN ('PENDING', 'OPEN', 'UNTRIGGERED') AND expires_at <= ?"
        # read first: most requests find nothing to expire and should not take the write lock
        if self._db.execute(f"SELECT 1 FROM orders WHERE {active} LIMIT 1", (now,)).fetchone():
            self._db.execute(
                "UPDATE orders SET status = 'CANCELED', cancel_reason = 'EXPIRED',"
                f" unfillable_at = expires_at WHERE {active}",
                (now,),
            )

    def open_margin_units(self, account_id: str) -> int:
        rows = self._db.execute(
            "SELECT margin_units FROM orders WHERE account_id = ? AND status IN ('PENDING', 'OPEN', 'UNTRIGGERED')",
            (account_id,),
        ).fetchall()
        return sum(int(row[0]) for row in rows)

    # -- withdrawals -------------------------------------------------------------------
    _WITHDRAWAL_COLUMNS = (
        "id, account_id, type, debit_units, credit_asset, credit_units, client_id, to_address,"
        " lp_position_id, status, created_at"
    )

    @staticmethod
    def _withdrawal(row: tuple[object, ...]) -> Withdrawal:
        values = list(row)
        values[3], values[5] = int(str(values[3])), int(str(values[5]))
        return Withdrawal(*values)  # type: ignore[arg-type]

    def add_withdrawal(self, withdrawal: Withdrawal) -> None:
        values = list(astuple(withdrawal))
        values[3], values[5] = str(withdrawal.debit_units), str(withdrawal.credit_units)
        try:
            self._db.execute(
                f"INSERT INTO withdrawals ({self._WITHDRAWAL_COLUMNS}) VALUES ({', '.join('?' * len(values))})",
                values,
            )
        except sqlite3.IntegrityError:
            raise ClientIdInUse(withdrawal.client_id) from None

    def withdrawals_of_account(self, account_id: str) -> list[Withdrawal]:
        rows = self._db.execute(
            f"SELECT {self._WITHDRAWAL_COLUMNS} FROM withdrawals WHERE account_id = ?",
            (account_id,),
        ).fetchall()
        return [self._withdrawal(row) for row in rows]

    def withdrawals_of_user(
        self, address: str, types: tuple[str, ...], created_before_or_at: str | None, limit: int
    ) -> list[Withdrawal]:
        columns = ", ".join(f"w.{c.strip()}" for c in self._WITHDRAWAL_COLUMNS.split(","))
        sql = (
            f"SELECT {columns} FROM withdrawals w JOIN accounts a ON w.account_id = a.id"
            f" WHERE a.address = ? AND w.type IN ({', '.join('?' * len(types))})"
        )
        args: list[object] = [address, *types]
        if created_before_or_at is not None:
            sql += " AND w.created_at <= ?"
            args.append(created_before_or_at)
        sql += " ORDER BY w.created_at DESC, w.rowid DESC LIMIT ?"
        args.append(limit)
        return [self._withdrawal(row) for row in self._db.execute(sql, args).fetchall()]

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
        """Forget every user, account, API key, order and withdrawal (chain facts and the position counter stay)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM api_keys")
        db.execute("DELETE FROM orders")
        db.execute("DELETE FROM withdrawals")
        db.execute("DELETE FROM user_profiles")
        db.execute("DELETE FROM accounts")
        db.execute("DELETE FROM users")
        db.execute("COMMIT")
