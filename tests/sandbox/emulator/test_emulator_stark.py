"""STARK crypto and messages without a network: both backends against dydx-v3-python's own code.

dydx3's pure-Python Pedersen hash, signer and ``Signable*`` classes are the
reference: the emulator's message builders and both its backends (StarkWare's
native crypto-cpp and the table-based Python) must agree with them bit for bit.
"""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import random
from decimal import Decimal

import pytest
from dydx3.constants import (
    COLLATERAL_ASSET_ID_BY_NETWORK_ID,
    FACT_REGISTRY_CONTRACT,
    NETWORK_ID_SEPOLIA,
    TOKEN_CONTRACTS,
)
from dydx3.helpers.request_helpers import iso_to_epoch_seconds
from dydx3.starkex.conditional_transfer import SignableConditionalTransfer
from dydx3.starkex.helpers import get_transfer_erc20_fact
from dydx3.starkex.helpers import nonce_from_client_id as dydx3_nonce
from dydx3.starkex.order import SignableOrder
from dydx3.starkex.starkex_resources.python_signature import (
    private_key_to_ec_point_on_stark_curve,
    py_pedersen_hash,
    py_sign,
)
from dydx3.starkex.withdrawal import SignableWithdrawal

from provisioner.sandbox.emulator import rate_limit, stark_crypto, stark_messages
from provisioner.sandbox.emulator.clock import parse_iso_ms
from provisioner.sandbox.emulator.markets import MARKETS

NETWORK = NETWORK_ID_SEPOLIA
COLLATERAL = COLLATERAL_ASSET_ID_BY_NETWORK_ID[NETWORK]
EXPIRATION = "2026-12-09T10:00:00.123Z"
POSITION = 100_042
LP_KEY = "04a9ecd28a67407c3cff8937f329ca24fd631b1d9ca2b9f2df47c7ebf72bf0b0"
RECIPIENT = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"
BACKENDS = {
    "python": (stark_crypto.py_pedersen_hash, stark_crypto.py_verify),
    "native": (stark_crypto.native_pedersen_hash, stark_crypto.native_verify),
}


def test_the_native_backend_is_installed_and_chosen() -> None:
    # make install puts crypto-cpp-py in .venv; the Python path is the fallback only
    assert stark_crypto.BACKEND == "native"


@pytest.mark.parametrize("backend", BACKENDS)
def test_pedersen_matches_dydx3(backend: str) -> None:
    pedersen, _ = BACKENDS[backend]
    rng = random.Random(7)
    edges = [0, 1, 2**248 - 1, 2**248, stark_crypto.FIELD_PRIME - 1]
    pairs = [(a, b) for a in edges for b in (0, stark_crypto.FIELD_PRIME - 1)]
    pairs += [(rng.getrandbits(251), rng.getrandbits(251)) for _ in range(4)]
    for a, b in pairs:
        assert pedersen(a, b) == py_pedersen_hash(a, b), (a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_signatures_of_dydx3s_signer_verify_and_nothing_else_does(backend: str) -> None:
    _, verify_impl = BACKENDS[backend]
    private = 0x2D21C094FEDEA3E72BEF27FBCDCEAAFD34E88FC4B7586859E26E98B21E63A60
    public = private_key_to_ec_point_on_stark_curve(private)
    other = private_key_to_ec_point_on_stark_curve(private + 1)
    message = py_pedersen_hash(1, 2) >> 4
    r, s = py_sign(message, private)
    assert verify_impl(message, r, s, public)
    assert verify_impl(message, r, s, (public[0], stark_crypto.FIELD_PRIME - public[1]))
    assert not verify_impl(message + 1, r, s, public)
    assert not verify_impl(message, r + 1, s, public)
    assert not verify_impl(message, r, s, other)
    assert stark_crypto.verify(message, r, s, public)
    assert not stark_crypto.verify(message, 0, s, public)  # out of StarkWare's bounds
    assert not stark_crypto.verify(2**251, r, s, public)
    assert not stark_crypto.verify(message, r, stark_crypto.EC_ORDER, public)


def test_point_of_recovers_a_curve_point_and_refuses_others() -> None:
    point = stark_crypto.point_of(int(LP_KEY, 16))
    assert point is not None and point[0] == int(LP_KEY, 16)
    x, y = point
    assert (y * y - (x**3 + x + stark_crypto.BETA)) % stark_crypto.FIELD_PRIME == 0
    assert stark_crypto.point_of(5) is None  # no y with y^2 = 5^3 + 5 + beta
    assert stark_crypto.point_of(0) is None


@pytest.mark.parametrize("side", ["BUY", "SELL"])
@pytest.mark.parametrize(
    ("market", "size", "price", "fee"),
    [
        ("BTC-USD", "0.0011", "1001", "0.0015"),
        ("ETH-USD", "12.345", "1999.9", "0.1"),
        ("LINK-USD", "3.3", "0.123", "0.0004999"),
        ("SOL-USD", "1000.1", "60.001", "0"),
    ],
)
def test_order_hashes_match_dydx3(side: str, market: str, size: str, price: str, fee: str) -> None:
    expected = SignableOrder(
        NETWORK, market, side, str(POSITION), size, price, fee, "cid-42",
        iso_to_epoch_seconds(EXPIRATION),
    ).hash  # fmt: skip
    built = stark_messages.order_message(
        market=MARKETS[market],
        collateral_asset_id=COLLATERAL,
        side=side,
        size=Decimal(size),
        price=Decimal(price),
        limit_fee=Decimal(fee),
        position_id=POSITION,
        client_id="cid-42",
        expiration_ms=parse_iso_ms(EXPIRATION),
    )
    assert built.hash() == expected


def test_withdrawal_and_fast_withdrawal_hashes_match_dydx3() -> None:
    expiration_s = iso_to_epoch_seconds(EXPIRATION)
    expected = SignableWithdrawal(NETWORK, str(POSITION), "12.5", "w1", expiration_s).hash
    assert expected == stark_messages.withdrawal_hash(
        collateral_asset_id=COLLATERAL,
        position_id=POSITION,
        amount=Decimal("12.5"),
        client_id="w1",
        expiration_ms=parse_iso_ms(EXPIRATION),
    )

    usdc = TOKEN_CONTRACTS["USDC"][NETWORK]
    fact = get_transfer_erc20_fact(
        recipient=RECIPIENT,
        token_decimals=6,
        human_amount="3.5",
        token_address=usdc,
        salt=dydx3_nonce("fw"),
    )
    registry = FACT_REGISTRY_CONTRACT[NETWORK]
    transfer = SignableConditionalTransfer(
        NETWORK, str(POSITION), "2", LP_KEY, registry, fact, "4", "fw", expiration_s
    )
    condition = stark_messages.erc20_fact_condition(
        fact_registry=registry.lower(),
        recipient=RECIPIENT.lower(),
        token=usdc.lower(),
        token_amount=Decimal("3.5"),
        salt=stark_messages.nonce_from_client_id("fw"),
    )
    assert condition == transfer.to_starkware().condition
    assert transfer.hash == stark_messages.conditional_transfer_hash(
        collateral_asset_id=COLLATERAL,
        sender_position_id=POSITION,
        receiver_position_id=2,
        receiver_public_key=int(LP_KEY, 16),
        condition=condition,
        amount=Decimal("4"),
        client_id="fw",
        expiration_ms=parse_iso_ms(EXPIRATION),
    )


def test_amounts_the_quantum_cannot_carry_are_refused() -> None:
    with pytest.raises(stark_messages.NotQuantizable):
        stark_messages.withdrawal_hash(
            collateral_asset_id=COLLATERAL,
            position_id=POSITION,
            amount=Decimal("0.0000001"),
            client_id="w",
            expiration_ms=parse_iso_ms(EXPIRATION),
        )


def test_order_cost_follows_v3s_notional_weighting() -> None:
    def body(size: str, price: str, **extra: str) -> dict[str, str]:
        return {"size": size, "price": price, "type": "LIMIT", "timeInForce": "GTT", **extra}

    assert rate_limit.order_cost(body("0.001", "1000")) == 100  # 1 USDC: the maximum
    assert rate_limit.order_cost(body("1", "1000")) == 40  # 40,000 / 1,000
    assert rate_limit.order_cost(body("10", "30000")) == 4  # the limit-order minimum
    assert rate_limit.order_cost(body("10", "30000", timeInForce="IOC")) == 20
    assert rate_limit.order_cost(body("10", "30000", type="STOP_LIMIT")) == 100
    assert rate_limit.order_cost(body("x", "1")) == 100
    assert rate_limit.order_cost(None) == 100
