"""The Ethereum node: batched reads, deposit events, and transactions we build ourselves.

All JSON-RPC goes through one small transport over ``requests`` (web3 5 is pinned by
dydx3; we only use its ABI and hashing helpers here, so an upgrade touches this module
alone). Reads are JSON-RPC batches, so the number of round trips does not grow with the
number of accounts. Transactions are built with exact integers, an explicit nonce, gas
from an estimate that must not revert, and current fees; broadcasting the same signed
bytes again is always safe, and nothing here ever signs or re-sends a *new* transaction.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import requests

from provisioner.clients.http import pooled_session
from provisioner.clients.retry import RetryPolicy
from provisioner.errors import ProvisionerError
from provisioner.ethaddress import eip55, keccak, selector, to_checksum
from provisioner.manifest.model import NetworkSpec
from provisioner.redact import display_url

Log = Callable[[str], None]

BATCH_SIZE = 500
LOG_RANGE_BLOCKS = 10_000
LOG_RANGES_PER_REQUEST = 20
FINAL_AFTER_BLOCKS = 64  # deposit events older than this are not re-read (reorgs are shallower)
RPC_TIMEOUT_S = 30.0
RECEIPT_POLL_S = 0.25
UINT256_MAX = 2**256 - 1

LOG_DEPOSIT_TOPIC = (
    "0x" + keccak(b"LogDeposit(address,uint256,uint256,uint256,uint256,uint256)").hex()
)
USER_UNREGISTERED = "USER_UNREGISTERED"
_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)
_ALREADY_KNOWN = ("already known", "known transaction", "already imported", "alreadyknown")
_NONCE_USED = ("nonce too low", "nonce has already been used", "oldnonce")
_LOG_LIMIT_HINTS = ("range", "limit", "too many", "more than", "exceed", "too large")


class ChainError(ProvisionerError):
    """The node refused, failed or could not be reached. Messages carry no URL path or query."""


class RpcError(ChainError):
    """A JSON-RPC error object from the node."""

    def __init__(self, method: str, code: object, message: str, data: object = None) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data

    @property
    def revert_reason(self) -> str | None:
        """The Error(string) reason if this is an EVM revert ("" for a bare revert), else None."""
        payload = self.data.get("data") if isinstance(self.data, dict) else self.data
        raw = _hex_bytes(payload) if isinstance(payload, str) else None
        if raw and raw[:4] == _ERROR_STRING:
            try:
                from eth_abi import decode  # rare: only reverts, so not at start-up

                return str(decode(["string"], raw[4:])[0])
            except Exception:  # noqa: BLE001 - malformed payload: fall back to the message
                pass
        if raw and raw[:4] == _PANIC and len(raw) >= 36:
            return f"panic 0x{int.from_bytes(raw[4:36], 'big'):x}"
        prefix = "execution reverted"
        if self.message.lower().startswith(prefix):
            return self.message[len(prefix) :].lstrip(": ").strip()
        if self.code == 3:
            return ""
        return None


class RevertError(ChainError):
    """A call or gas estimate reverted; ``reason`` is the contract's revert string."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ChainAccount:
    usdc_balance: int
    usdc_allowance: int
    eth_balance_wei: int
    stark_key_owner: (
        str | None
    )  # checksummed; None when the STARK key is not registered (or not asked)


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    status: int
    block_number: int


@dataclass
class ChainStats:
    """Counters for tests and benchmarks. ``rpc_calls`` counts JSON-RPC calls, batched or not."""

    rpc_calls: int = 0
    http_requests: int = 0
    batch_requests: int = 0
    sent_transactions: int = 0


@dataclass(frozen=True)
class _DepositScan:
    """Deposit totals from a scan: ``settled`` up to block ``final_to``, then each recent event."""

    settled: dict[tuple[int, int], int]
    final_to: int
    recent: tuple[tuple[int, tuple[int, int], int], ...]  # (block, key, quantized) after final_to
    head: int

    def totals(
        self, confirmations: int = 0
    ) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
        """(confirmed, unconfirmed): events with ``confirmations`` blocks on top, and the others."""
        confirmed = dict(self.settled)
        unconfirmed: dict[tuple[int, int], int] = {}
        for block, key, quantized in self.recent:
            into = confirmed if self.head - block >= confirmations else unconfirmed
            into[key] = into.get(key, 0) + quantized
        return confirmed, unconfirmed


class FeeTooHigh(ChainError):
    """The fee the node asks for now is over the network's ``max_fee_gwei``: nothing is signed."""


class NonceManager:
    """Nonces per sender: the node's pending count first, then counted up here, thread-safe.

    After a failure between taking a nonce and the node accepting the transaction, call
    ``resync`` so the next nonce comes from the node again (no gap, no reuse).
    """

    def __init__(self, pending_count: Callable[[str], int]) -> None:
        self._pending_count = pending_count
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._next: dict[str, int] = {}

    def next(self, address: str) -> int:
        key = address.lower()
        with self._lock_for(key):
            if key not in self._next:
                self._next[key] = self._pending_count(address)
            nonce = self._next[key]
            self._next[key] = nonce + 1
            return nonce

    def resync(self, address: str) -> None:
        key = address.lower()
        with self._lock_for(key):
            self._next.pop(key, None)

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


class _HttpStatus(Exception):
    """A non-200 answer; ``status`` (and ``retry_after``) drive the shared retry policy."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


Call = tuple[str, list[Any]]


class _JsonRpc:
    """POSTs JSON-RPC calls and batches; transport failures retried by the shared policy."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        retry: RetryPolicy,
        stats: ChainStats,
        log: Log | None,
        session: requests.Session | None,
    ) -> None:
        self._url = url
        self.where = display_url(url)
        self._timeout = timeout
        self._retry = retry
        self._stats = stats
        self._stats_lock = threading.Lock()
        self._log = log
        self._session = session or pooled_session(url)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._session.close()

    def count_sent(self) -> None:
        with self._stats_lock:
            self._stats.sent_transactions += 1

    def call(self, method: str, params: list[Any]) -> Any:
        result = self.batch([(method, params)], as_batch=False)[0]
        if isinstance(result, RpcError):
            raise result
        return result

    def batch(
        self, calls: Sequence[Call], *, chunk: int = BATCH_SIZE, as_batch: bool = True
    ) -> list[Any | RpcError]:
        """Results in call order; a call's JSON-RPC error comes back as an ``RpcError`` value."""
        results: list[Any | RpcError] = []
        for start in range(0, len(calls), chunk):
            results.extend(self._post(calls[start : start + chunk], as_batch))
        return results

    def _post(self, calls: Sequence[Call], as_batch: bool) -> list[Any | RpcError]:
        ids = [next(self._ids) for _ in calls]
        bodies = [
            {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
            for i, (m, p) in zip(ids, calls, strict=True)
        ]
        payload: object = bodies if as_batch else bodies[0]
        what = f"{calls[0][0]}" if len(calls) == 1 else f"batch of {len(calls)} calls"
        with self._stats_lock:
            self._stats.rpc_calls += len(calls)
            self._stats.batch_requests += int(as_batch)
        try:
            answer = self._retry.call(
                lambda: self._send(payload),
                idempotent=True,  # reads, and rebroadcasts of the very same signed bytes
                describe=f"{what} at {self.where}",
                log=self._log,
            )
        except _HttpStatus as exc:
            raise ChainError(
                f"the Ethereum node at {self.where} answered {what} with {exc}"
            ) from None
        except requests.RequestException as exc:
            raise ChainError(
                f"cannot reach the Ethereum node at {self.where} ({type(exc).__name__})"
            ) from None
        if isinstance(answer, dict) and not as_batch:
            answer = [answer]
        if isinstance(answer, dict) and "error" in answer:  # the whole batch was refused
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            raise RpcError(what, error.get("code"), str(error.get("message", answer["error"])))
        if not isinstance(answer, list):
            raise ChainError(f"the Ethereum node at {self.where} gave no JSON-RPC answer to {what}")
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        out: list[Any | RpcError] = []
        for i, (method, _params) in zip(ids, calls, strict=True):
            item = by_id.get(i)
            if item is None:
                raise ChainError(f"the Ethereum node at {self.where} left {method} unanswered")
            if "error" in item:
                error = item["error"] if isinstance(item["error"], dict) else {}
                out.append(
                    RpcError(
                        method,
                        error.get("code"),
                        str(error.get("message", item["error"])),
                        error.get("data"),
                    )
                )
            else:
                out.append(item.get("result"))
        return out

    def _send(self, payload: object) -> Any:
        with self._stats_lock:
            self._stats.http_requests += 1
        response = self._session.post(self._url, json=payload, timeout=self._timeout)
        if response.status_code != 200:
            try:
                body = response.json()
            except ValueError:
                body = None
            if (
                isinstance(body, dict | list)
                and response.status_code < 500
                and response.status_code != 429
            ):
                return body  # some nodes send JSON-RPC errors with a 4xx status
            raise _HttpStatus(response.status_code, _retry_after(response))
        try:
            return response.json()
        except ValueError:
            raise ChainError(
                f"the Ethereum node at {self.where} answered with something that is not JSON"
            ) from None


class ChainClient:
    """Reads and transactions for one network's exchange and USDC contracts."""

    def __init__(
        self,
        rpc_url: str,
        network: NetworkSpec,
        *,
        log: Log | None = None,
        timeout: float = RPC_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.network = network
        self.stats = ChainStats()
        self._rpc = _JsonRpc(
            rpc_url,
            timeout=timeout,
            retry=retry or RetryPolicy(max_attempts=4, base_delay=0.25, max_delay=2.0),
            stats=self.stats,
            log=log,
            session=session,
        )
        self._log = log
        self._exchange = to_checksum(network.exchange_contract)
        self._usdc = to_checksum(network.usdc_contract)
        self.nonces = NonceManager(self._pending_count)
        self._chain_id: int | None = None
        self._deposits_lock = threading.Lock()
        self._deposits: dict[int, _DepositScan] = {}  # by from_block

    def close(self) -> None:
        self._rpc.close()

    def __enter__(self) -> ChainClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plain reads ----------------------------------------------------------------------

    def chain_id(self) -> int:
        return _quantity(self._rpc.call("eth_chainId", []), "eth_chainId")

    def block_number(self) -> int:
        return _quantity(self._rpc.call("eth_blockNumber", []), "eth_blockNumber")

    def receipt(self, tx_hash: str) -> Receipt | None:
        found = self._rpc.call("eth_getTransactionReceipt", [tx_hash])
        if not found or found.get("blockNumber") is None:
            return None
        return Receipt(
            tx_hash=str(found.get("transactionHash", tx_hash)).lower(),
            status=_quantity(found.get("status"), "receipt status"),
            block_number=_quantity(found["blockNumber"], "receipt blockNumber"),
        )

    def transaction_counts(self, address: str) -> tuple[int, int]:
        """(latest, pending) transaction counts of ``address``, in one batch."""
        latest, pending = self._rpc.batch(
            [
                ("eth_getTransactionCount", [address, "latest"]),
                ("eth_getTransactionCount", [address, "pending"]),
            ]
        )
        for result in (latest, pending):
            if isinstance(result, RpcError):
                raise result
        return _quantity(latest, "nonce"), _quantity(pending, "nonce")

    def transaction_known(self, tx_hash: str) -> bool:
        """True if the node has the transaction, mined or in its pool."""
        return self.transaction(tx_hash) is not None

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        """The node's view of a transaction (from, nonce, to, input, value...), None if unknown."""
        found = self._rpc.call("eth_getTransactionByHash", [tx_hash])
        return found if isinstance(found, dict) else None

    def transaction_count_at(self, address: str, block: int) -> int:
        """How many transactions ``address`` had sent as of ``block``."""
        return _quantity(self._rpc.call("eth_getTransactionCount", [address, hex(block)]), "nonce")

    def wait_for_receipt(
        self, tx_hash: str, timeout_seconds: float, *, poll_seconds: float = RECEIPT_POLL_S
    ) -> Receipt:
        """The receipt of a successful transaction; ChainError on timeout or revert (status 0)."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            found = self.receipt(tx_hash)
            if found is not None:
                if found.status != 1:
                    raise ChainError(f"transaction {tx_hash} reverted (block {found.block_number})")
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChainError(
                    f"no receipt for transaction {tx_hash} after {timeout_seconds:g}s; "
                    "it may still be mined: look it up by hash before doing anything else"
                )
            time.sleep(min(poll_seconds, remaining))

    # -- batched account reads ------------------------------------------------------------

    def read_accounts(
        self, items: Sequence[tuple[str, int | None]], *, block: int | str = "latest"
    ) -> dict[str, ChainAccount]:
        """USDC balance and allowance, ETH balance and the STARK key's owner, keyed by checksummed address.

        One JSON-RPC batch per ``BATCH_SIZE`` calls (four calls per account at most).
        """
        tag = hex(block) if isinstance(block, int) else block
        wanted: dict[str, int | None] = {}
        for address, stark_key in items:
            checked = to_checksum(address)
            if checked in wanted and wanted[checked] != stark_key:
                raise ValueError(f"{checked} is listed twice with different STARK keys")
            if stark_key is not None:
                _uint(stark_key, "stark_key")
            wanted[checked] = stark_key
        calls: list[Call] = []
        for address, stark_key in wanted.items():
            calls.append(
                self._eth_call(self._usdc, "balanceOf(address)", ["address"], [address], tag)
            )
            calls.append(
                self._eth_call(
                    self._usdc,
                    "allowance(address,address)",
                    ["address", "address"],
                    [address, self._exchange],
                    tag,
                )
            )
            calls.append(("eth_getBalance", [address, tag]))
            if stark_key is not None:
                calls.append(
                    self._eth_call(
                        self._exchange, "getEthKey(uint256)", ["uint256"], [stark_key], tag
                    )
                )
        results = iter(self._rpc.batch(calls))
        out: dict[str, ChainAccount] = {}
        for address, stark_key in wanted.items():
            balance = self._uint_result(next(results), "USDC balanceOf", self._usdc)
            allowance = self._uint_result(next(results), "USDC allowance", self._usdc)
            eth = next(results)
            if isinstance(eth, RpcError):
                raise eth
            owner = self._owner_result(next(results)) if stark_key is not None else None
            out[address] = ChainAccount(
                usdc_balance=balance,
                usdc_allowance=allowance,
                eth_balance_wei=_quantity(eth, "eth_getBalance"),
                stark_key_owner=owner,
            )
        return out

    def _eth_call(
        self, to: str, signature: str, types: list[str], args: list[Any], tag: str
    ) -> Call:
        return ("eth_call", [{"to": to, "data": _calldata(signature, types, args)}, tag])

    def _uint_result(self, result: Any, what: str, contract: str) -> int:
        if isinstance(result, RpcError):
            raise ChainError(f"{what} at {contract} failed: {result.message}")
        raw = _hex_bytes(result)
        if raw is None or len(raw) < 32:
            raise ChainError(
                f"{what}: no contract answers at {contract} on the node at {self._rpc.where} "
                f"(is this chain {self.network.name}, chain id {self.network.chain_id}?)"
            )
        return int.from_bytes(raw[:32], "big")

    def _owner_result(self, result: Any) -> str | None:
        if isinstance(result, RpcError):
            reason = result.revert_reason
            if reason == USER_UNREGISTERED:
                return None
            raise ChainError(f"getEthKey at {self._exchange} failed: {result.message}")
        value = self._uint_result(result, "getEthKey", self._exchange)
        if value == 0:  # StarkEx v4+ returns 0x0 instead of reverting
            return None
        return eip55("0x" + value.to_bytes(32, "big")[12:].hex())

    # -- deposit events -------------------------------------------------------------------

    def deposits(self, from_block: int = 0, *, refresh: bool = False) -> dict[tuple[int, int], int]:
        """Quantized USDC deposited per (starkKey, vaultId), summed from the exchange's LogDeposit events.

        Scanned once per client (per ``from_block``) and cached; ``refresh`` reads the new blocks.
        """
        confirmed, unconfirmed = self.deposit_totals(from_block, refresh=refresh, confirmations=0)
        return confirmed

    def deposit_totals(
        self, from_block: int = 0, *, refresh: bool = False, confirmations: int | None = None
    ) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
        """(confirmed, unconfirmed) deposit totals: events with ``confirmations`` blocks on top
        (default: the network's), and the younger ones, which a reorg may still take away."""
        with self._deposits_lock:
            scan = self._deposits.get(from_block)
            if scan is None or refresh:
                scan = self._scan_deposits(from_block, scan)
                self._deposits[from_block] = scan
        wanted = self.network.confirmations if confirmations is None else confirmations
        return scan.totals(wanted)

    def _scan_deposits(self, from_block: int, previous: _DepositScan | None) -> _DepositScan:
        """A refresh scans only what is new since the previous scan's final blocks (every deposit
        step of an apply refreshes: scanning from ``from_block`` each time grew with the chain
        and the number of accounts); blocks younger than ``FINAL_AFTER_BLOCKS`` are read again."""
        latest = self.block_number()
        start = from_block if previous is None else previous.final_to + 1
        depth = max(FINAL_AFTER_BLOCKS, self.network.confirmations)
        final_to = max(latest - depth, start - 1)
        settled = dict(previous.settled) if previous is not None else {}
        recent: list[tuple[int, tuple[int, int], int]] = []
        for block, key, quantized in self._deposit_logs(start, latest):
            if block <= final_to:
                settled[key] = settled.get(key, 0) + quantized
            else:
                recent.append((block, key, quantized))
        return _DepositScan(settled=settled, final_to=final_to, recent=tuple(recent), head=latest)

    def _deposit_logs(self, first: int, latest: int) -> list[tuple[int, tuple[int, int], int]]:
        """(block, (starkKey, vaultId), quantized amount) of every USDC LogDeposit in the range."""
        ranges = [
            (start, min(start + LOG_RANGE_BLOCKS - 1, latest))
            for start in range(first, latest + 1, LOG_RANGE_BLOCKS)
        ]
        found: list[tuple[int, tuple[int, int], int]] = []
        while ranges:
            group, ranges = ranges[:LOG_RANGES_PER_REQUEST], ranges[LOG_RANGES_PER_REQUEST:]
            calls: list[Call] = [
                (
                    "eth_getLogs",
                    [
                        {
                            "address": self._exchange,
                            "topics": [LOG_DEPOSIT_TOPIC],
                            "fromBlock": hex(a),
                            "toBlock": hex(b),
                        }
                    ],
                )
                for a, b in group
            ]
            retry_smaller: list[tuple[int, int]] = []
            for (a, b), result in zip(group, self._rpc.batch(calls), strict=True):
                if isinstance(result, RpcError):
                    if b > a and any(h in result.message.lower() for h in _LOG_LIMIT_HINTS):
                        middle = (a + b) // 2
                        retry_smaller += [(a, middle), (middle + 1, b)]
                        continue
                    raise ChainError(
                        f"reading deposit events (blocks {a}-{b}) failed: {result.message}"
                    )
                for log in result or []:
                    deposit = self._deposit(log)
                    if deposit is not None:
                        found.append(deposit)
            ranges = retry_smaller + ranges
        return found

    def _deposit(self, log: dict[str, Any]) -> tuple[int, tuple[int, int], int] | None:
        if log.get("removed") or str(log.get("address", "")).lower() != self._exchange.lower():
            return None
        topics = log.get("topics") or []
        if not topics or str(topics[0]).lower() != LOG_DEPOSIT_TOPIC:
            return None
        data = _hex_bytes(log.get("data"))
        if data is None or len(data) != 6 * 32:
            raise ChainError(f"malformed LogDeposit in transaction {log.get('transactionHash')}")
        _depositor, stark_key, vault_id, asset_type, _amount, quantized = (
            int.from_bytes(data[i : i + 32], "big") for i in range(0, 6 * 32, 32)
        )
        if asset_type != self.network.collateral_asset_id:
            return None
        block = _quantity(log.get("blockNumber"), "LogDeposit blockNumber")
        return block, (stark_key, vault_id), quantized

    # -- transactions ---------------------------------------------------------------------

    def build_register(
        self, sender: str, eth_key: str, stark_key: int, signature_hex: str
    ) -> dict[str, Any]:
        """``registerUser(ethKey, starkKey, signature)`` with the user admin's 65-byte signature."""
        signature = _hex_bytes(signature_hex)
        if signature is None or len(signature) != 65:
            raise ValueError("the registration signature must be 0x + 130 hex digits")
        data = _calldata(
            "registerUser(address,uint256,bytes)",
            ["address", "uint256", "bytes"],
            [to_checksum(eth_key), _uint(stark_key, "stark_key"), signature],
        )
        return self._build("registerUser", sender, self._exchange, data)

    def build_approve(self, owner: str, amount: int) -> dict[str, Any]:
        """USDC ``approve(exchange, amount)``, amount in base units."""
        data = _calldata(
            "approve(address,uint256)",
            ["address", "uint256"],
            [self._exchange, _uint(amount, "amount")],
        )
        return self._build("approve", owner, self._usdc, data)

    def build_deposit(
        self, owner: str, stark_key: int, position_id: int, amount: int
    ) -> dict[str, Any]:
        """``deposit(starkKey, collateral asset id, positionId, quantizedAmount)``; quantum is 1.

        The gas estimate runs against the latest block: the approve must be mined first.
        """
        data = _calldata(
            "deposit(uint256,uint256,uint256,uint256)",
            ["uint256", "uint256", "uint256", "uint256"],
            [
                _uint(stark_key, "stark_key"),
                self.network.collateral_asset_id,
                _uint(position_id, "position_id"),
                _uint(amount, "amount"),
            ],
        )
        return self._build("deposit", owner, self._exchange, data)

    def _build(self, what: str, sender: str, to: str, data: str) -> dict[str, Any]:
        sender = to_checksum(sender)
        call = {"from": sender, "to": to, "data": data}
        estimate, block, tip, gas_price, chain_id = self._rpc.batch(
            [
                ("eth_estimateGas", [call]),
                ("eth_getBlockByNumber", ["latest", False]),
                ("eth_maxPriorityFeePerGas", []),
                ("eth_gasPrice", []),
                ("eth_chainId", []),
            ]
        )
        if isinstance(estimate, RpcError):
            reason = estimate.revert_reason
            if reason is not None:
                raise RevertError(
                    f"{what} from {sender} would revert: {reason or 'no reason given'}", reason
                )
            raise ChainError(f"cannot estimate gas for {what} from {sender}: {estimate.message}")
        for result in (block, gas_price, chain_id):
            if isinstance(result, RpcError):
                raise result
        node_chain = _quantity(chain_id, "eth_chainId")
        if node_chain != self.network.chain_id:
            raise ChainError(
                f"the node at {self._rpc.where} serves chain {node_chain}, the manifest says {self.network.chain_id}"
            )
        gas = -(-_quantity(estimate, "eth_estimateGas") * 6 // 5)  # x1.2, rounded up
        tx: dict[str, Any] = {**call, "value": 0, "gas": gas, "chainId": node_chain}
        base_fee = block.get("baseFeePerGas") if isinstance(block, dict) else None
        ceiling = self._fee_ceiling()
        if base_fee is not None and not isinstance(tip, RpcError):
            priority = _quantity(tip, "eth_maxPriorityFeePerGas")
            base = _quantity(base_fee, "baseFeePerGas")
            self._check_fee(what, base + priority, ceiling)
            tx["maxPriorityFeePerGas"] = priority
            # room for the base fee to double, but never past the ceiling
            tx["maxFeePerGas"] = min(2 * base + priority, ceiling or UINT256_MAX)
        else:
            tx["gasPrice"] = _quantity(gas_price, "eth_gasPrice")
            self._check_fee(what, tx["gasPrice"], ceiling)
        tx["nonce"] = self.nonces.next(sender)  # last: a failed estimate must not use up a nonce
        return tx

    def _fee_ceiling(self) -> int | None:
        gwei = self.network.max_fee_gwei
        return None if gwei is None else int(gwei * 10**9)

    def _check_fee(self, what: str, wei: int, ceiling: int | None) -> None:
        if ceiling is not None and wei > ceiling:
            assert self.network.max_fee_gwei is not None
            raise FeeTooHigh(
                f"{what}: the fee now ({_gwei(wei)} gwei per gas) is over the network's "
                f"max_fee_gwei of {self.network.max_fee_gwei:f} gwei; nothing was signed or sent"
            )

    def _pending_count(self, address: str) -> int:
        return _quantity(self._rpc.call("eth_getTransactionCount", [address, "pending"]), "nonce")

    @staticmethod
    def hash_of_raw(raw: bytes) -> str:
        return "0x" + keccak(raw).hex()

    def send_raw(self, raw: bytes) -> str:
        """Broadcast signed bytes; the tx hash. Sending the same bytes again is harmless."""
        tx_hash = self.hash_of_raw(raw)
        try:
            result = self._rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        except RpcError as err:
            message = err.message.lower()
            if any(hint in message for hint in _ALREADY_KNOWN):
                return tx_hash
            if any(hint in message for hint in _NONCE_USED):
                if self.transaction_known(tx_hash):
                    return tx_hash
                raise ChainError(
                    f"transaction {tx_hash} was refused: its nonce was already used by another transaction"
                ) from None
            raise ChainError(f"the node refused transaction {tx_hash}: {err.message}") from None
        except ChainError as exc:
            raise ChainError(
                f"broadcasting {tx_hash} failed ({exc}); it may have reached the node: "
                "check it by hash and send the same signed bytes again"
            ) from None
        if str(result).lower() != tx_hash:
            raise ChainError(f"the node answered hash {result} for transaction {tx_hash}")
        self._rpc.count_sent()
        if self._log:
            self._log(f"broadcast {tx_hash}")
        return tx_hash


def _gwei(wei: int) -> str:
    from decimal import Decimal

    return f"{(Decimal(wei) / 10**9).normalize():f}"


def _calldata(signature: str, types: list[str], args: list[Any]) -> str:
    if all(t in _STATIC_WORDS for t in types):  # the reads: one 32-byte word per argument
        words = b"".join(_STATIC_WORDS[t](a) for t, a in zip(types, args, strict=True))
        return "0x" + (_selector(signature) + words).hex()
    from eth_abi import encode  # transactions only: a plan's reads never need it (0.2 s to import)

    return "0x" + (_selector(signature) + encode(types, args)).hex()


# Reading 1,000 accounts builds 3,000 calls: eth_abi's generic encoder and a keccak of the
# signature per call cost more than the batch itself, so the two static types the reads use
# are encoded here (and checked against eth_abi in the tests) and selectors are cached.
def _address_word(value: str) -> bytes:
    return bytes(12) + bytes.fromhex(to_checksum(value)[2:])


def _uint_word(value: int) -> bytes:
    return _uint(value, "argument").to_bytes(32, "big")


_STATIC_WORDS: dict[str, Callable[[Any], bytes]] = {"address": _address_word, "uint256": _uint_word}


@cache
def _selector(signature: str) -> bytes:
    return selector(signature)


def _uint(value: int, name: str) -> int:
    """Exact integers only: a float or Decimal here is a bug upstream, not something to round."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value <= UINT256_MAX:
        raise ValueError(f"{name} {value} is out of uint256 range")
    return value


def _quantity(value: object, what: str) -> int:
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise ChainError(f"{what}: expected a hex quantity, got {value!r}")


def _hex_bytes(value: object) -> bytes | None:
    if not isinstance(value, str) or not value.startswith("0x"):
        return None
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        return None


def _retry_after(response: requests.Response) -> float | None:
    header = response.headers.get("Retry-After")
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None
