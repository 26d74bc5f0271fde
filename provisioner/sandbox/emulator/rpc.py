"""The few Ethereum JSON-RPC calls the emulator makes, over aiohttp."""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp


class RpcError(Exception):
    """The node could not be reached or answered with an error."""


class EthRpc:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, params: list[Any]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            async with self._session.post(self.url, json=payload) as resp:
                answer = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RpcError(f"{method}: {type(exc).__name__}: {exc}") from None
        if not isinstance(answer, dict):
            raise RpcError(f"{method}: unexpected answer")
        if answer.get("error"):
            raise RpcError(f"{method}: {answer['error']}")
        return answer.get("result")

    async def block_number(self) -> int:
        return int(await self.call("eth_blockNumber", []), 16)

    async def block_hash(self, number: int) -> str | None:
        block = await self.call("eth_getBlockByNumber", [hex(number), False])
        return None if not block else str(block["hash"]).lower()

    async def get_logs(
        self, address: str, topics: list[str], from_block: int, to_block: int
    ) -> list[dict[str, Any]]:
        flt = {
            "address": address,
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block),
            "topics": [topics],
        }
        result = await self.call("eth_getLogs", [flt])
        return list(result or [])

    async def transaction_count(self, address: str) -> int:
        return int(await self.call("eth_getTransactionCount", [address, "latest"]), 16)

    async def balance(self, address: str) -> int:
        return int(await self.call("eth_getBalance", [address, "latest"]), 16)

    async def erc20_balance(self, token: str, owner: str) -> int:
        data = "0x70a08231" + owner[2:].lower().rjust(64, "0")
        result = await self.call("eth_call", [{"to": token, "data": data}, "latest"])
        return int(result, 16) if result and result != "0x" else 0
