"""Follows the exchange contract's events on the sandbox chain.

Every ``poll_interval`` it reads ``LogUserRegistered`` and ``LogDeposit`` from the
last scanned block to the head, stores them with the new cursor in one
transaction, and marks deposits CONFIRMED once they have ``confirmations`` blocks
(the deposit's own block counts as one, as Ethereum counts them). If the block
under the cursor changed hash or vanished, the chain was replaced (anvil
restarted without its state, or rewound): every chain fact is dropped and the
chain is scanned again from block 0.

Amounts are the events' ``quantizedAmount``: USDC base units (quantum 1), exact.
"""

from __future__ import annotations

import asyncio
import logging

from provisioner.sandbox.emulator.clock import now_iso
from provisioner.sandbox.emulator.ids import deposit_transfer_id
from provisioner.sandbox.emulator.rpc import EthRpc, RpcError
from provisioner.sandbox.emulator.stark_keys import canonical
from provisioner.sandbox.emulator.store import ChainCursor, Deposit, Store

LOG_USER_REGISTERED = "0xcab1cf17c190e4e2195a7b8f7b362023246fa774390432b4704ab6b29d56b07b"
LOG_DEPOSIT = "0x06724742ccc8c330a39a641ef02a0b419bd09248360680bb38159b0a8c2635d6"
_MAX_BLOCK_RANGE = 2_000

log = logging.getLogger("emulator.chain")


def _words(data: str) -> list[int]:
    raw = data[2:] if data.startswith("0x") else data
    return [int(raw[i : i + 64], 16) for i in range(0, len(raw) - 63, 64)]


def _address(word: int) -> str:
    return "0x" + f"{word:040x}"[-40:]


class ChainFollower:
    def __init__(
        self,
        rpc: EthRpc,
        store: Store,
        *,
        exchange_contract: str,
        collateral_asset_id: int,
        confirmations: int,
        poll_interval_s: float,
    ) -> None:
        self._rpc = rpc
        self._store = store
        self._exchange = exchange_contract
        self._asset_id = collateral_asset_id
        self.confirmations = confirmations
        self._poll_interval_s = poll_interval_s
        self.head: int | None = None
        self.last_error: str | None = None

    def status(self) -> dict[str, object]:
        cursor = self._store.chain_cursor()
        return {
            "head": self.head,
            "scanned_to": None if cursor is None else cursor.block_number,
            "confirmations": self.confirmations,
            "exchange_contract": self._exchange,
            "last_error": self.last_error,
        }

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
                if self.last_error is not None:
                    log.info("chain follower: node reachable again")
                self.last_error = None
            except RpcError as exc:
                if self.last_error is None:
                    log.warning("chain follower: %s (will retry)", exc)
                self.last_error = str(exc)
            await asyncio.sleep(self._poll_interval_s)

    async def poll_once(self) -> None:
        head = await self._rpc.block_number()
        cursor = self._store.chain_cursor()
        if cursor is not None and (
            cursor.block_number > head
            or await self._rpc.block_hash(cursor.block_number) != cursor.block_hash
        ):
            log.warning(
                "chain follower: block %d changed, the chain was replaced; rescanning",
                cursor.block_number,
            )
            self._store.forget_chain()
            cursor = None
        start = 0 if cursor is None else cursor.block_number + 1
        while start <= head:
            end = min(head, start + _MAX_BLOCK_RANGE - 1)
            logs = await self._rpc.get_logs(
                self._exchange, [LOG_USER_REGISTERED, LOG_DEPOSIT], start, end
            )
            end_hash = await self._rpc.block_hash(end)
            if end_hash is None:
                return
            registrations, deposits = self._parse(logs)
            self._store.save_chain_batch(ChainCursor(end, end_hash), registrations, deposits)
            for d in deposits:
                log.info(
                    "chain follower: deposit %d base units to position %d in block %d",
                    d.quantized,
                    d.vault_id,
                    d.block_number,
                )
            start = end + 1
        self.head = head
        confirmed = self._store.confirm_deposits(head - max(self.confirmations, 1) + 1, now_iso())
        if confirmed:
            log.info("chain follower: %d deposit(s) confirmed at head %d", confirmed, head)

    def _parse(
        self, logs: list[dict[str, object]]
    ) -> tuple[list[tuple[str, str, int]], list[Deposit]]:
        registrations: list[tuple[str, str, int]] = []
        deposits: list[Deposit] = []
        seen_at = now_iso()
        for entry in logs:
            if entry.get("removed"):
                continue
            try:
                topic0 = str(entry["topics"][0]).lower()  # type: ignore[index]
                words = _words(str(entry["data"]))
                block_number = int(str(entry["blockNumber"]), 16)
                tx_hash = str(entry["transactionHash"]).lower()
                log_index = int(str(entry["logIndex"]), 16)
            except (KeyError, IndexError, TypeError, ValueError):
                log.warning("chain follower: skipping a malformed log entry")
                continue
            if topic0 == LOG_USER_REGISTERED and len(words) >= 2:
                registrations.append((canonical(words[1]), _address(words[0]), block_number))
            elif topic0 == LOG_DEPOSIT and len(words) >= 6:
                depositor, stark_key, vault_id, asset_type, _non_quantized, quantized = words[:6]
                if asset_type != self._asset_id:
                    continue
                deposits.append(
                    Deposit(
                        id=deposit_transfer_id(tx_hash, log_index),
                        tx_hash=tx_hash,
                        log_index=log_index,
                        block_number=block_number,
                        depositor=_address(depositor),
                        stark_key=canonical(stark_key),
                        vault_id=vault_id,
                        quantized=quantized,
                        created_at=seen_at,
                        confirmed_at=None,
                    )
                )
        return registrations, deposits
