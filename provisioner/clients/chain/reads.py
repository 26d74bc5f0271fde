"""Account reads in JSON-RPC batches: USDC balance and allowance, ETH balance, the STARK key's owner.

The number of round trips grows with ``BATCH_SIZE`` calls, not with accounts: four calls
per account at most, in as few batches as that allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.clients.chain.abi import calldata, hex_bytes, uint
from provisioner.clients.chain.errors import ChainError, RpcError
from provisioner.clients.chain.rpc import Call, JsonRpc, quantity
from provisioner.ethaddress import eip55, to_checksum
from provisioner.manifest.model import NetworkSpec

USER_UNREGISTERED = "USER_UNREGISTERED"


@dataclass(frozen=True)
class ChainAccount:
    usdc_balance: int
    usdc_allowance: int
    eth_balance_wei: int
    # checksummed; None when the STARK key is not registered (or not asked)
    stark_key_owner: str | None


class AccountReader:
    def __init__(self, rpc: JsonRpc, network: NetworkSpec) -> None:
        self._rpc = rpc
        self._network = network
        self._exchange = to_checksum(network.exchange_contract)
        self._usdc = to_checksum(network.usdc_contract)

    def read(
        self, items: Sequence[tuple[str, int | None]], *, block: int | str = "latest"
    ) -> dict[str, ChainAccount]:
        """Keyed by checksummed address; a STARK key of None asks nothing about the owner."""
        tag = hex(block) if isinstance(block, int) else block
        wanted: dict[str, int | None] = {}
        for address, stark_key in items:
            checked = to_checksum(address)
            if checked in wanted and wanted[checked] != stark_key:
                raise ValueError(f"{checked} is listed twice with different STARK keys")
            if stark_key is not None:
                uint(stark_key, "stark_key")
            wanted[checked] = stark_key
        calls: list[Call] = []
        for address, stark_key in wanted.items():
            calls.append(_eth_call(self._usdc, "balanceOf(address)", ["address"], [address], tag))
            calls.append(
                _eth_call(
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
                    _eth_call(self._exchange, "getEthKey(uint256)", ["uint256"], [stark_key], tag)
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
                eth_balance_wei=quantity(eth, "eth_getBalance"),
                stark_key_owner=owner,
            )
        return out

    def _uint_result(self, result: Any, what: str, contract: str) -> int:
        if isinstance(result, RpcError):
            raise ChainError(f"{what} at {contract} failed: {result.message}")
        raw = hex_bytes(result)
        if raw is None or len(raw) < 32:
            raise ChainError(
                f"{what}: no contract answers at {contract} on the node at {self._rpc.where} "
                f"(is this chain {self._network.name}, chain id {self._network.chain_id}?)"
            )
        return int.from_bytes(raw[:32], "big")

    def _owner_result(self, result: Any) -> str | None:
        if isinstance(result, RpcError):
            if result.revert_reason == USER_UNREGISTERED:
                return None
            raise ChainError(f"getEthKey at {self._exchange} failed: {result.message}")
        value = self._uint_result(result, "getEthKey", self._exchange)
        if value == 0:  # StarkEx v4+ returns 0x0 instead of reverting
            return None
        return eip55("0x" + value.to_bytes(32, "big")[12:].hex())


def _eth_call(to: str, signature: str, types: list[str], args: list[Any], tag: str) -> Call:
    return ("eth_call", [{"to": to, "data": calldata(signature, types, args)}, tag])
