"""``ChainClient``: one network's exchange and USDC contracts, through one JSON-RPC node.

The pieces live beside it (``rpc``, ``abi``, ``reads``, ``deposits``, ``transactions``);
this is the one object the rest of the provisioner holds. web3 5 is pinned by dydx3, so
only eth_abi (for transactions) and our own hashing are used, in this package alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from provisioner.clients.chain.deposits import DepositScanner
from provisioner.clients.chain.errors import RpcError
from provisioner.clients.chain.head import ChainHead
from provisioner.clients.chain.reads import AccountReader, ChainAccount
from provisioner.clients.chain.rpc import ChainStats, JsonRpc, quantity
from provisioner.clients.chain.transactions import (
    RECEIPT_POLL_S,
    NonceCheck,
    NonceManager,
    Receipt,
    Transactions,
    hash_of_raw,
)
from provisioner.clients.retry import RetryPolicy
from provisioner.clients.transport import HttpTransport, Transport
from provisioner.manifest.model import NetworkSpec
from provisioner.waits import WaitHook

Log = Callable[[str], None]

RPC_TIMEOUT_S = 30.0


class ChainClient:
    """Reads and transactions for one network. ``transport``: the run's shared one; without
    it the client makes (and closes) its own."""

    def __init__(
        self,
        rpc_url: str,
        network: NetworkSpec,
        *,
        transport: Transport | None = None,
        log: Log | None = None,
        timeout: float = RPC_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        on_wait: WaitHook | None = None,
    ) -> None:
        """``on_wait``: told when a receipt is waited for, and again (an end already passed) when
        the wait is over."""
        self.network = network
        self.stats = ChainStats()
        self._transport = transport or HttpTransport()
        self._closes_transport = transport is None
        self._rpc = JsonRpc(
            rpc_url,
            self._transport,
            timeout=timeout,
            retry=retry or RetryPolicy(max_attempts=4, base_delay=0.25, max_delay=2.0),
            stats=self.stats,
            log=log,
        )
        self._reader = AccountReader(self._rpc, network)
        self._deposits = DepositScanner(self._rpc, network)
        self._tx = Transactions(self._rpc, network, log=log, on_wait=on_wait)
        self.nonces: NonceManager = self._tx.nonces
        self._head = ChainHead(self.block_number)

    def close(self) -> None:
        self._head.close()
        if self._closes_transport:
            self._transport.close()

    def __enter__(self) -> ChainClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plain reads ----------------------------------------------------------------------

    def chain_id(self) -> int:
        return quantity(self._rpc.call("eth_chainId", []), "eth_chainId")

    def block_number(self) -> int:
        return self._deposits.block_number()

    def head(self) -> int:
        """The block number as this client's waiters last saw it (at most one poll old)."""
        return self._head.current()

    def head_after(self, block: int, timeout: float) -> int:
        """Wait until the head is no longer ``block`` (or ``timeout`` seconds); the head then. All
        the client's waiters share one ``eth_blockNumber`` poll and wake on the same block."""
        return self._head.after(block, timeout)

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
        return quantity(latest, "nonce"), quantity(pending, "nonce")

    def read_accounts(
        self, items: Sequence[tuple[str, int | None]], *, block: int | str = "latest"
    ) -> dict[str, ChainAccount]:
        """USDC balance and allowance, ETH balance and the STARK key's owner, keyed by checksummed address."""
        return self._reader.read(items, block=block)

    def deposits(self, from_block: int = 0, *, refresh: bool = False) -> dict[tuple[int, int], int]:
        """Quantized USDC deposited per (starkKey, vaultId), from the exchange's LogDeposit events.

        Scanned once per client (per ``from_block``) and cached; ``refresh`` reads the new blocks.
        """
        return self._deposits.deposits(from_block, refresh=refresh)

    def deposit_totals(
        self, from_block: int = 0, *, refresh: bool = False, confirmations: int | None = None
    ) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
        """(confirmed, unconfirmed) deposit totals: events with ``confirmations`` blocks on top
        (default: the network's), and the younger ones, which a reorg may still take away."""
        return self._deposits.totals(from_block, refresh=refresh, confirmations=confirmations)

    # -- transactions ---------------------------------------------------------------------

    def build_register(
        self,
        sender: str,
        eth_key: str,
        stark_key: int,
        signature_hex: str,
        *,
        nonces: NonceCheck | None = None,
    ) -> dict[str, Any]:
        """``registerUser(ethKey, starkKey, signature)`` with the user admin's 65-byte signature.
        ``nonces``: called with the sender's (latest, pending) counts, asked in the build's own
        batch, before a nonce is handed out (``NonceCheck``); the same for each build."""
        return self._tx.build_register(sender, eth_key, stark_key, signature_hex, nonces=nonces)

    def build_approve(
        self, owner: str, amount: int, *, nonces: NonceCheck | None = None
    ) -> dict[str, Any]:
        """USDC ``approve(exchange, amount)``, amount in base units."""
        return self._tx.build_approve(owner, amount, nonces=nonces)

    def build_deposit(
        self,
        owner: str,
        stark_key: int,
        position_id: int,
        amount: int,
        *,
        nonces: NonceCheck | None = None,
    ) -> dict[str, Any]:
        """``deposit(starkKey, collateral asset id, positionId, quantizedAmount)``; quantum is 1.

        The gas estimate runs on the pending state: an approve in the node's pool counts, so
        the deposit can follow it in nonce order without waiting for its block.
        """
        return self._tx.build_deposit(owner, stark_key, position_id, amount, nonces=nonces)

    @staticmethod
    def hash_of_raw(raw: bytes) -> str:
        return hash_of_raw(raw)

    def send_raw(self, raw: bytes) -> str:
        """Broadcast signed bytes; the tx hash. Sending the same bytes again is harmless;
        ``NonceTaken`` when another transaction has their nonce."""
        return self._tx.send_raw(raw)

    def transaction_known(self, tx_hash: str) -> bool:
        """True if the node has the transaction, mined or in its pool."""
        return self._tx.transaction_known(tx_hash)

    def receipt(self, tx_hash: str) -> Receipt | None:
        return self._tx.receipt(tx_hash)

    def receipts(self, tx_hashes: Sequence[str]) -> dict[str, Receipt | None]:
        """Receipts by hash (None: not mined), in one JSON-RPC batch."""
        return self._tx.receipts(tx_hashes)

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        """The node's view of a transaction (from, nonce, to, input, value...), None if unknown."""
        return self._tx.transaction(tx_hash)

    def transaction_count_at(self, address: str, block: int) -> int:
        """How many transactions ``address`` had sent as of ``block``."""
        return self._tx.transaction_count_at(address, block)

    def wait_for_receipt(
        self, tx_hash: str, timeout_seconds: float, *, poll_seconds: float = RECEIPT_POLL_S
    ) -> Receipt:
        """The receipt of a successful transaction; ChainError on timeout or revert (status 0)."""
        return self._tx.wait_for_receipt(tx_hash, timeout_seconds, poll_seconds=poll_seconds)

    def pending_count(self, address: str) -> int:
        """The node's pending transaction count of ``address``: the next nonce it expects."""
        return self._tx.pending_count(address)
