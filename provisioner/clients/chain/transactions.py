"""Transactions we build ourselves, their nonces, their broadcast and their receipts.

Built with exact integers, an explicit nonce, gas from an estimate that must not
revert, and current fees. The estimate runs on the node's *pending* state, which holds the
pool (anvil's and geth's do): a sender's transactions already broadcast count, so one that
depends on them (a deposit on its approve) is simulated as it will run when sent right
behind them in nonce order, in the same block. Broadcasting the same signed bytes again is always safe;
nothing here signs, or sends a new transaction in place of one that failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from provisioner.clients.chain.abi import UINT256_MAX, calldata, hex_bytes, printable, uint
from provisioner.clients.chain.errors import (
    ChainError,
    FeeTooHigh,
    NonceTaken,
    RevertError,
    RpcError,
)
from provisioner.clients.chain.rpc import Call, JsonRpc, quantity
from provisioner.ethaddress import keccak, to_checksum
from provisioner.manifest.model import NetworkSpec
from provisioner.waits import Wait, WaitHook

Log = Callable[[str], None]

RECEIPT_POLL_S = 0.25
_ALREADY_KNOWN = ("already known", "known transaction", "already imported", "alreadyknown")
_NONCE_USED = ("nonce too low", "nonce has already been used", "oldnonce")


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    status: int
    block_number: int


NonceCheck = Callable[[int, int], None]
"""Given a sender's (latest, pending) transaction counts from a build's own batch, before a
nonce is handed out; raises to refuse the transaction (apply's pending-nonce guard)."""


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
        self._generation: dict[str, int] = {}  # times each counter was set or reset

    def ticket(self, address: str) -> int | None:
        """None when the next nonce of ``address`` is counted here (no request needed); else a
        ticket for ``next``: a pending count read after it is used only if the counter was not
        set or reset meanwhile (another thread's nonces, or a ``resync`` after a failed send)."""
        key = address.lower()
        with self._lock_for(key):
            return None if key in self._next else self._generation.get(key, 0)

    def next(self, address: str, pending: int | None = None, ticket: int | None = None) -> int:
        """``pending``: the node's pending count, read by the caller after taking ``ticket``;
        used when no nonce is counted here and none was since (else the node is asked)."""
        key = address.lower()
        with self._lock_for(key):
            if key not in self._next:
                generation = self._generation.get(key, 0)
                if pending is None or ticket != generation:
                    pending = self._pending_count(address)
                self._next[key] = pending
                self._generation[key] = generation + 1
            nonce = self._next[key]
            self._next[key] = nonce + 1
            return nonce

    def resync(self, address: str) -> None:
        key = address.lower()
        with self._lock_for(key):
            self._next.pop(key, None)
            self._generation[key] = self._generation.get(key, 0) + 1

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


class Transactions:
    def __init__(
        self,
        rpc: JsonRpc,
        network: NetworkSpec,
        *,
        log: Log | None,
        on_wait: WaitHook | None = None,
    ) -> None:
        self._rpc = rpc
        self._on_wait = on_wait
        self._senders: dict[str, str] = {}  # tx hash -> sender, to say whose receipt is awaited
        self._network = network
        self._log = log
        self._exchange = to_checksum(network.exchange_contract)
        self._usdc = to_checksum(network.usdc_contract)
        self.nonces = NonceManager(self.pending_count)

    # -- building ---------------------------------------------------------------------------

    def build_register(
        self,
        sender: str,
        eth_key: str,
        stark_key: int,
        signature_hex: str,
        *,
        nonces: NonceCheck | None = None,
    ) -> dict[str, Any]:
        signature = hex_bytes(signature_hex)
        if signature is None or len(signature) != 65:
            raise ValueError("the registration signature must be 0x + 130 hex digits")
        data = calldata(
            "registerUser(address,uint256,bytes)",
            ["address", "uint256", "bytes"],
            [to_checksum(eth_key), uint(stark_key, "stark_key"), signature],
        )
        return self._build("registerUser", sender, self._exchange, data, nonces)

    def build_approve(
        self, owner: str, amount: int, *, nonces: NonceCheck | None = None
    ) -> dict[str, Any]:
        data = calldata(
            "approve(address,uint256)",
            ["address", "uint256"],
            [self._exchange, uint(amount, "amount")],
        )
        return self._build("approve", owner, self._usdc, data, nonces)

    def build_deposit(
        self,
        owner: str,
        stark_key: int,
        position_id: int,
        amount: int,
        *,
        nonces: NonceCheck | None = None,
    ) -> dict[str, Any]:
        data = calldata(
            "deposit(uint256,uint256,uint256,uint256)",
            ["uint256", "uint256", "uint256", "uint256"],
            [
                uint(stark_key, "stark_key"),
                self._network.collateral_asset_id,
                uint(position_id, "position_id"),
                uint(amount, "amount"),
            ],
        )
        return self._build("deposit", owner, self._exchange, data, nonces)

    def _build(
        self, what: str, sender: str, to: str, data: str, nonces: NonceCheck | None = None
    ) -> dict[str, Any]:
        sender = to_checksum(sender)
        call = {"from": sender, "to": to, "data": data}
        calls: list[Call] = [
            ("eth_estimateGas", [call, "pending"]),
            ("eth_getBlockByNumber", ["latest", False]),
            ("eth_maxPriorityFeePerGas", []),
            ("eth_gasPrice", []),
            ("eth_chainId", []),
        ]
        ticket = self.nonces.ticket(sender)
        if ticket is not None or nonces is not None:  # in the same round trip
            calls.append(("eth_getTransactionCount", [sender, "pending"]))
        if nonces is not None:
            calls.append(("eth_getTransactionCount", [sender, "latest"]))
        estimate, block, tip, gas_price, chain_id, *count = self._rpc.batch(calls)
        if isinstance(estimate, RpcError):
            reason = estimate.revert_reason
            if reason is not None:
                raise RevertError(
                    f"{what} from {sender} would revert: {reason or 'no reason given'}", reason
                )
            raise ChainError(
                f"cannot estimate gas for {what} from {sender}: {printable(estimate.message)}"
            )
        for result in (block, gas_price, chain_id):
            if isinstance(result, RpcError):
                raise result
        node_chain = quantity(chain_id, "eth_chainId")
        if node_chain != self._network.chain_id:
            raise ChainError(
                f"the node at {self._rpc.where} serves chain {node_chain}, the manifest says {self._network.chain_id}"
            )
        gas = -(-quantity(estimate, "eth_estimateGas") * 6 // 5)  # x1.2, rounded up
        tx: dict[str, Any] = {**call, "value": 0, "gas": gas, "chainId": node_chain}
        base_fee = block.get("baseFeePerGas") if isinstance(block, dict) else None
        ceiling = self._fee_ceiling()
        if base_fee is not None and not isinstance(tip, RpcError):
            priority = quantity(tip, "eth_maxPriorityFeePerGas")
            base = quantity(base_fee, "baseFeePerGas")
            self._check_fee(what, base + priority, ceiling)
            tx["maxPriorityFeePerGas"] = priority
            # room for the base fee to double, but never past the ceiling
            tx["maxFeePerGas"] = min(2 * base + priority, ceiling or UINT256_MAX)
        else:
            tx["gasPrice"] = quantity(gas_price, "eth_gasPrice")
            self._check_fee(what, tx["gasPrice"], ceiling)
        pending = count[0] if count and not isinstance(count[0], RpcError) else None
        if nonces is not None:  # before a nonce is handed out: a refusal uses none up
            for result in count:
                if isinstance(result, RpcError):
                    raise result
            nonces(quantity(count[1], "nonce"), quantity(count[0], "nonce"))
        # last: a failed estimate must not use up a nonce
        tx["nonce"] = self.nonces.next(
            sender, None if pending is None else quantity(pending, "nonce"), ticket
        )
        return tx

    def _fee_ceiling(self) -> int | None:
        gwei = self._network.max_fee_gwei
        return None if gwei is None else int(gwei * 10**9)

    def _check_fee(self, what: str, wei: int, ceiling: int | None) -> None:
        if ceiling is not None and wei > ceiling:
            raise FeeTooHigh(
                f"{what}: the fee now ({_gwei(wei)} gwei per gas) is over the network's "
                f"max_fee_gwei of {self._network.max_fee_gwei:f} gwei; nothing was signed or sent"
            )

    def pending_count(self, address: str) -> int:
        return quantity(self._rpc.call("eth_getTransactionCount", [address, "pending"]), "nonce")

    # -- broadcast and receipts -------------------------------------------------------------

    def send_raw(self, raw: bytes) -> str:
        tx_hash = hash_of_raw(raw)
        try:
            result = self._rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        except RpcError as err:
            message = err.message.lower()
            if any(hint in message for hint in _ALREADY_KNOWN):
                return tx_hash
            if any(hint in message for hint in _NONCE_USED):
                if self.transaction_known(tx_hash):
                    return tx_hash
                raise NonceTaken(tx_hash) from None
            raise ChainError(f"the node refused transaction {tx_hash}: {err.message}") from None
        except ChainError as exc:
            raise ChainError(
                f"broadcasting {tx_hash} failed ({exc}); it may have reached the node: "
                "check it by hash and send the same signed bytes again"
            ) from None
        if str(result).lower() != tx_hash:
            raise ChainError(f"the node answered hash {result} for transaction {tx_hash}")
        self._rpc.count_sent()
        if self._on_wait is not None:
            self._remember_sender(tx_hash, raw)
        if self._log:
            self._log(f"broadcast {tx_hash}")
        return tx_hash

    def transaction_known(self, tx_hash: str) -> bool:
        return self.transaction(tx_hash) is not None

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        found = self._rpc.call("eth_getTransactionByHash", [tx_hash])
        return found if isinstance(found, dict) else None

    def transaction_count_at(self, address: str, block: int) -> int:
        return quantity(self._rpc.call("eth_getTransactionCount", [address, hex(block)]), "nonce")

    def receipt(self, tx_hash: str) -> Receipt | None:
        return _receipt(tx_hash, self._rpc.call("eth_getTransactionReceipt", [tx_hash]))

    def receipts(self, tx_hashes: Sequence[str]) -> dict[str, Receipt | None]:
        """The receipts of ``tx_hashes`` in one request (a batch when there are several)."""
        calls = [("eth_getTransactionReceipt", [h]) for h in tx_hashes]
        found = self._rpc.batch(calls, as_batch=len(calls) > 1) if calls else []
        out: dict[str, Receipt | None] = {}
        for tx_hash, result in zip(tx_hashes, found, strict=True):
            if isinstance(result, RpcError):
                raise result
            out[tx_hash] = _receipt(tx_hash, result)
        return out

    def wait_for_receipt(
        self, tx_hash: str, timeout_seconds: float, *, poll_seconds: float = RECEIPT_POLL_S
    ) -> Receipt:
        deadline = time.monotonic() + timeout_seconds
        told = False
        try:
            while True:
                found = self.receipt(tx_hash)
                if found is not None:
                    if found.status != 1:
                        raise ChainError(
                            f"transaction {tx_hash} reverted (block {found.block_number})"
                        )
                    return found
                if not told and self._on_wait is not None:
                    told = True  # once the first look found none: the block is still to come
                    self._tell(tx_hash, time.time() + timeout_seconds)
                self._poll(tx_hash, deadline, timeout_seconds, poll_seconds)
        finally:
            if told:
                self._tell(tx_hash, 0.0)  # over: a wait whose end has passed

    def _tell(self, tx_hash: str, until: float) -> None:
        if self._on_wait is not None:
            sender = self._senders.get(tx_hash, tx_hash)
            what = f"receipt of {tx_hash[:10]}..."
            self._on_wait(Wait(what, until, subject=sender, at_most=True))

    def _remember_sender(self, tx_hash: str, raw: bytes) -> None:
        try:
            from eth_account import Account  # imported for signing already

            self._senders[tx_hash] = str(Account.recover_transaction(raw)).lower()
        except Exception:  # noqa: BLE001 - only for display: the hash names the wait then
            pass

    def _poll(
        self, tx_hash: str, deadline: float, timeout_seconds: float, poll_seconds: float
    ) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChainError(
                f"no receipt for transaction {tx_hash} after {timeout_seconds:g}s; "
                "it may still be mined: look it up by hash before doing anything else"
            )
        time.sleep(min(poll_seconds, remaining))


def _receipt(tx_hash: str, found: Any) -> Receipt | None:
    if not isinstance(found, dict) or found.get("blockNumber") is None:
        return None
    return Receipt(
        tx_hash=str(found.get("transactionHash", tx_hash)).lower(),
        status=quantity(found.get("status"), "receipt status"),
        block_number=quantity(found["blockNumber"], "receipt blockNumber"),
    )


def _gwei(wei: int) -> str:
    return f"{(Decimal(wei) / 10**9).normalize():f}"


def hash_of_raw(raw: bytes) -> str:
    return "0x" + keccak(raw).hex()
