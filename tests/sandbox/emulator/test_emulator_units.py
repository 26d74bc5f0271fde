"""Emulator parts without a network: signature types, the chain follower on a fake node, limits, faults."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import asyncio
from pathlib import Path
from typing import Any

import pytest
from eth_keys import keys
from eth_utils import keccak

from provisioner.sandbox.emulator.chain_follower import (
    LOG_DEPOSIT,
    LOG_USER_REGISTERED,
    ChainFollower,
)
from provisioner.sandbox.emulator.faults import FaultPlan
from provisioner.sandbox.emulator.rate_limit import GET_LIMIT, WRITE_LIMIT, RateLimiter
from provisioner.sandbox.emulator.signatures import (
    SignatureFormatError,
    action_message,
    eth_private_message,
    parse_typed_signature,
    recover_signer,
)
from provisioner.sandbox.emulator.store import ClientIdInUse, Order, Store

KEY = keys.PrivateKey(
    bytes.fromhex("4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d")
)
ADDRESS = KEY.public_key.to_address().lower()
ASSET = 0x01E70C509C4C6BFAFE8B73D2FC1819444B2C0B435D4B82C0F24ADDFF9565CE25
EXCHANGE = "0x3d05aacd0fed84f65de0d91e4621298e702911e2"


def _typed(msg_hash: bytes, sig_type: int) -> str:
    signature = KEY.sign_msg_hash(msg_hash)
    return "0x" + signature.to_bytes()[:64].hex() + f"{signature.v + 27:02x}" + f"{sig_type:02x}"


# -- typed signatures -------------------------------------------------------------------
@pytest.mark.parametrize("sig_type", [0, 1, 2, 3])
def test_all_four_signature_types_recover_the_signer(sig_type: int) -> None:
    message = eth_private_message(
        11155111, "POST", "/v3/api-keys", "{}", "2021-01-01T00:00:00.000Z"
    )
    if sig_type == 0:
        signed = message.digest
    elif sig_type == 1:
        signed = keccak(b"\x19Ethereum Signed Message:\n32" + message.digest)
    elif sig_type == 2:
        signed = keccak(b"\x19Ethereum Signed Message:\n\x20" + message.digest)
    else:  # the TS client's personal_sign text: domain fields, then message keys sorted, 2-space JSON
        text = (
            b'{\n  "name": "dYdX",\n  "version": "1.0",\n  "chainId": 11155111,\n  "body": "{}",\n'
            b'  "method": "POST",\n  "requestPath": "/v3/api-keys",\n  "timestamp": "2021-01-01T00:00:00.000Z"\n}'
        )
        signed = keccak(b"\x19Ethereum Signed Message:\n" + str(len(text)).encode() + text)
    assert recover_signer(parse_typed_signature(_typed(signed, sig_type)), message) == ADDRESS
    wrong_type = (sig_type + 1) % 4
    assert recover_signer(parse_typed_signature(_typed(signed, wrong_type)), message) != ADDRESS


def test_v_zero_or_one_is_normalised_like_the_clients_do() -> None:
    message = action_message("dYdX Onboarding", 11155111)
    signature = KEY.sign_msg_hash(message.digest)
    raw = "0x" + signature.to_bytes()[:64].hex() + f"{signature.v:02x}" + "00"
    assert recover_signer(parse_typed_signature(raw), message) == ADDRESS


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "0x",
        "0x" + "00" * 65,
        "0x" + "00" * 67,
        "0x" + "11" * 64 + "1d00",
        "0x" + "11" * 64 + "1b04",
    ],
)
def test_malformed_typed_signatures(text: Any) -> None:
    with pytest.raises(SignatureFormatError):
        parse_typed_signature(text)


def test_zero_r_or_s_recovers_nobody() -> None:
    sig = parse_typed_signature("0x" + "00" * 64 + "1b00")
    assert recover_signer(sig, action_message("dYdX Onboarding", 1)) is None


# -- chain follower on a fake node -------------------------------------------------------
def _word(value: int) -> str:
    return f"{value:064x}"


class FakeNode:
    """Blocks, their hashes and logs; ``replace()`` swaps in a new chain as an anvil restart would."""

    def __init__(self) -> None:
        self.head = 0
        self.generation = 0
        self.logs: list[dict[str, Any]] = []

    def mine(self, blocks: int = 1) -> None:
        self.head += blocks

    def replace(self) -> None:
        self.generation += 1
        self.head = 0
        self.logs = []

    def add(self, topic: str, words: list[int], tx: str = "0xaa") -> None:
        self.mine()
        self.logs.append(
            {
                "topics": [topic],
                "data": "0x" + "".join(_word(w) for w in words),
                "blockNumber": hex(self.head),
                "transactionHash": tx,
                "logIndex": hex(len(self.logs)),
            }
        )

    async def block_number(self) -> int:
        return self.head

    async def block_hash(self, number: int) -> str | None:
        return None if number > self.head else f"0x{self.generation:02x}{number:062x}"

    async def get_logs(
        self, address: str, topics: list[str], from_block: int, to_block: int
    ) -> list[dict[str, Any]]:
        assert address == EXCHANGE and set(topics) == {LOG_DEPOSIT, LOG_USER_REGISTERED}
        return [log for log in self.logs if from_block <= int(log["blockNumber"], 16) <= to_block]


def _follower(
    tmp_path: Path, node: FakeNode, confirmations: int = 3
) -> tuple[ChainFollower, Store]:
    store = Store(tmp_path / "follower.sqlite3")
    follower = ChainFollower(
        node,  # type: ignore[arg-type]
        store,
        exchange_contract=EXCHANGE,
        collateral_asset_id=ASSET,
        confirmations=confirmations,
        poll_interval_s=0.01,
    )
    return follower, store


def _deposit(
    node: FakeNode, stark: int, vault: int, amount: int, asset: int = ASSET, tx: str = "0xaa"
) -> None:
    node.add(LOG_DEPOSIT, [int(ADDRESS, 16), stark, vault, asset, amount, amount], tx)


def test_deposits_are_pending_until_confirmed_and_exact(tmp_path: Path) -> None:
    node = FakeNode()
    follower, store = _follower(tmp_path, node, confirmations=4)
    node.add(LOG_USER_REGISTERED, [int(ADDRESS, 16), 0x1234, int(ADDRESS, 16)])
    _deposit(node, 0x1234, 100_000, 8_199_999)
    _deposit(node, 0x1234, 100_000, 5, asset=ASSET + 1)  # another asset: not dYdX collateral
    _deposit(node, 0x1234, 2**70, 5)  # a vault id no account can have; head is now block 4
    asyncio.run(follower.poll_once())
    assert store.registered_eth_address(f"{0x1234:064x}") == ADDRESS
    (deposit,) = store.deposits_for_position(f"{0x1234:064x}", 100_000)
    assert (deposit.quantized, deposit.confirmed_at, deposit.block_number) == (8_199_999, None, 2)
    node.mine(1)  # head 5: block 2 has 4 confirmations (its own block counts)
    asyncio.run(follower.poll_once())
    assert store.deposits_for_position(f"{0x1234:064x}", 100_000)[0].confirmed_at is not None
    asyncio.run(follower.poll_once())  # polling again changes nothing
    assert len(store.deposits_for_position(f"{0x1234:064x}", 100_000)) == 1


def test_confirmation_count_is_inclusive_of_the_deposit_block(tmp_path: Path) -> None:
    node = FakeNode()
    follower, store = _follower(tmp_path, node, confirmations=2)
    _deposit(node, 0x99, 7, 1)  # block 1, head 1: one confirmation
    asyncio.run(follower.poll_once())
    assert store.deposits_for_position(f"{0x99:064x}", 7)[0].confirmed_at is None
    node.mine(1)  # head 2: two confirmations
    asyncio.run(follower.poll_once())
    assert store.deposits_for_position(f"{0x99:064x}", 7)[0].confirmed_at is not None


def test_a_replaced_chain_is_rescanned_from_scratch(tmp_path: Path) -> None:
    node = FakeNode()
    follower, store = _follower(tmp_path, node)
    _deposit(node, 0x5, 1, 10, tx="0x01")
    node.mine(5)
    asyncio.run(follower.poll_once())
    assert len(store.deposits_for_position(f"{0x5:064x}", 1)) == 1
    node.replace()  # a fresh chain: same heights, other hashes, no deposit
    node.mine(10)
    asyncio.run(follower.poll_once())
    assert store.deposits_for_position(f"{0x5:064x}", 1) == []
    _deposit(node, 0x5, 1, 20, tx="0x02")
    asyncio.run(follower.poll_once())
    assert [d.quantized for d in store.deposits_for_position(f"{0x5:064x}", 1)] == [20]


def test_a_shorter_chain_is_rescanned(tmp_path: Path) -> None:
    node = FakeNode()
    follower, store = _follower(tmp_path, node)
    _deposit(node, 0x5, 1, 10)
    node.mine(20)
    asyncio.run(follower.poll_once())
    node.head = 3  # the node restarted from an older state
    asyncio.run(follower.poll_once())
    cursor = store.chain_cursor()
    assert cursor is not None and cursor.block_number == 3


def test_the_cursor_survives_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    node = FakeNode()
    follower, store = _follower(tmp_path, node)
    _deposit(node, 0x5, 1, 10)
    asyncio.run(follower.poll_once())
    store.close()
    follower2, store2 = _follower(tmp_path, node)
    asyncio.run(follower2.poll_once())
    assert len(store2.deposits_for_position(f"{0x5:064x}", 1)) == 1


# -- rate limiter and faults -------------------------------------------------------------
def test_fixed_windows_and_reset() -> None:
    limiter = RateLimiter(strict=True)
    decisions = [limiter.hit(("write", "ip", "a"), WRITE_LIMIT, 1_000) for _ in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert decisions[0].headers() == {
        "RateLimit-Remaining": "9",
        "RateLimit-Limit": "10",
        "RateLimit-Reset": "61000",
    }
    assert decisions[-1].headers()["Retry-After"] == "60000"
    assert limiter.hit(("write", "ip", "b"), WRITE_LIMIT, 1_000).allowed  # another key
    assert limiter.hit(("write", "ip", "a"), WRITE_LIMIT, 61_000).remaining == 9  # a new window
    assert limiter.hit(("get", "ip"), GET_LIMIT, 0).limit == 175
    relaxed = RateLimiter(strict=False)
    assert all(relaxed.hit(("write", "ip"), WRITE_LIMIT, 0).allowed for _ in range(100))


def test_fault_plan_first_matching_rule_decides() -> None:
    plan = FaultPlan()
    plan.add({"method": "get", "path": "/v3/time", "burst_429": 1, "latency_ms": 5})
    plan.add({"path": "/v3", "error_rate": 1, "status": 502, "times": 1})
    assert (plan.decide("GET", "/v3/time").outcome, plan.decide("GET", "/v3/time").latency_ms) == (
        "429",
        5,
    )
    assert plan.decide("POST", "/v3/onboarding").outcome == "error"
    assert plan.decide("POST", "/v3/onboarding").outcome == "pass"
    assert plan.decide("GET", "/admin/stats").outcome == "pass"
    with pytest.raises(ValueError):
        plan.add({"drop_rate": True})


# -- orders in the store --------------------------------------------------------------------
def _stored_order(order_id: str, client_id: str, expires_at: str, margin: int) -> Order:
    return Order(
        id=order_id, account_id="acct", client_id=client_id, market="BTC-USD", side="BUY",
        type="LIMIT", size="0.001", remaining_size="0.001", price="1000", trigger_price=None,
        trailing_percent=None, limit_fee="0.001", time_in_force="GTT", post_only=True,
        reduce_only=False, status="OPEN", cancel_reason=None, expires_at=expires_at,
        created_at="2026-01-01T00:00:00.000Z", unfillable_at=None, margin_units=margin,
    )  # fmt: skip


def test_orders_expire_release_their_margin_and_keep_client_ids_unique(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    store.add_order(_stored_order("o1", "c1", "2026-01-01T00:01:00.000Z", 50_000))
    store.add_order(_stored_order("o2", "c2", "2026-01-01T00:05:00.000Z", 70_000))
    with pytest.raises(ClientIdInUse):
        store.add_order(_stored_order("o3", "c1", "2026-01-01T00:05:00.000Z", 1))
    assert store.open_margin_units("acct") == 120_000

    store.expire_orders("2026-01-01T00:02:00.000Z")
    expired = store.order("o1")
    assert expired is not None and (expired.status, expired.cancel_reason) == (
        "CANCELED",
        "EXPIRED",
    )
    assert expired.unfillable_at == "2026-01-01T00:01:00.000Z"
    assert store.open_margin_units("acct") == 70_000
    (canceled,) = store.cancel_orders("acct", "BTC-USD", None, "2026-01-01T00:03:00.000Z")
    assert canceled.id == "o2" and canceled.cancel_reason == "USER_CANCELED"
    assert store.open_margin_units("acct") == 0
    assert store.cancel_orders("acct", None, None, "2026-01-01T00:04:00.000Z") == []
