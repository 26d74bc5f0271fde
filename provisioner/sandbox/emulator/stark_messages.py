"""The StarkEx messages v3 clients sign with their STARK key, rebuilt from a request's fields.

Orders (``LIMIT_ORDER_WITH_FEES``), withdrawals and conditional transfers (fast
withdrawals) are packed and Pedersen-hashed exactly as dydx-v3-python and
starkex-lib do it (shared/reference and the clients' ``starkex`` modules): field
widths, prefixes, padding, the nonce (SHA-256 of the client id mod 2^32), the
signed expiration in hours (rounded up; orders add a 7-day buffer) and the
quantum rounding (buys round the collateral up, sells down, fees up).

Amounts arrive as decimal strings and are converted with Decimal, never float; a
value the quantum cannot carry exactly is an error, as the clients make it one.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

from eth_utils import keccak

from provisioner.sandbox.emulator.markets import Market
from provisioner.sandbox.emulator.stark_crypto import pedersen_hash

COLLATERAL_RESOLUTION = 10**6
ORDER_EXPIRATION_BUFFER_HOURS = 24 * 7
_ORDER_PREFIX = 3
_ORDER_PADDING_BITS = 17
_WITHDRAWAL_PREFIX = 6
_WITHDRAWAL_PADDING_BITS = 49
_CONDITIONAL_TRANSFER_PREFIX = 5
_CONDITIONAL_TRANSFER_PADDING_BITS = 81
_AMOUNT_BITS = 64
_NONCE_BITS = 32
_POSITION_BITS = 64
_HOURS_BITS = 32
_MASK_250 = (1 << 250) - 1


class NotQuantizable(ValueError):
    """An amount that is no whole number of quantums, or too large for its field."""


def nonce_from_client_id(client_id: str) -> int:
    return int.from_bytes(hashlib.sha256(client_id.encode()).digest(), "big") % (1 << _NONCE_BITS)


def epoch_hours(expiration_ms: int) -> int:
    """Hours since the epoch, rounded up, of an expiration in epoch milliseconds."""
    return math.ceil(Decimal(expiration_ms) / Decimal(3_600_000))


def _exact_quantums(amount: Decimal, resolution: int) -> int:
    scaled = amount * resolution
    if scaled != scaled.to_integral_value():
        raise NotQuantizable(str(amount))
    return _fits(int(scaled))


def _fits(value: int, bits: int = _AMOUNT_BITS) -> int:
    if not 0 <= value < 1 << bits:
        raise NotQuantizable(str(value))
    return value


@dataclass(frozen=True)
class OrderMessage:
    synthetic_asset_id: int
    collateral_asset_id: int
    quantums_synthetic: int
    quantums_collateral: int
    quantums_fee: int
    is_buying_synthetic: bool
    position_id: int
    nonce: int
    expiration_epoch_hours: int

    def hash(self) -> int:
        if self.is_buying_synthetic:
            sell_id, buy_id = self.collateral_asset_id, self.synthetic_asset_id
            sell, buy = self.quantums_collateral, self.quantums_synthetic
        else:
            sell_id, buy_id = self.synthetic_asset_id, self.collateral_asset_id
            sell, buy = self.quantums_synthetic, self.quantums_collateral
        part_1 = (((sell << _AMOUNT_BITS) + buy) << _AMOUNT_BITS) + self.quantums_fee
        part_1 = (part_1 << _NONCE_BITS) + self.nonce
        part_2 = _ORDER_PREFIX
        for _ in range(3):
            part_2 = (part_2 << _POSITION_BITS) + self.position_id
        part_2 = ((part_2 << _HOURS_BITS) + self.expiration_epoch_hours) << _ORDER_PADDING_BITS
        assets = pedersen_hash(pedersen_hash(sell_id, buy_id), self.collateral_asset_id)
        return pedersen_hash(pedersen_hash(assets, part_1), part_2)


def order_message(
    *,
    market: Market,
    collateral_asset_id: int,
    side: str,
    size: Decimal,
    price: Decimal,
    limit_fee: Decimal,
    position_id: int,
    client_id: str,
    expiration_ms: int,
) -> OrderMessage:
    buying = side == "BUY"
    cost = size * price * COLLATERAL_RESOLUTION
    collateral = cost.to_integral_value(ROUND_CEILING if buying else ROUND_FLOOR)
    fee_rate = limit_fee.quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
    fee = (fee_rate * collateral).to_integral_value(ROUND_CEILING)
    return OrderMessage(
        synthetic_asset_id=market.synthetic_asset_id,
        collateral_asset_id=collateral_asset_id,
        quantums_synthetic=_exact_quantums(size, market.resolution),
        quantums_collateral=_fits(int(collateral)),
        quantums_fee=_fits(int(fee)),
        is_buying_synthetic=buying,
        position_id=_fits(position_id, _POSITION_BITS),
        nonce=nonce_from_client_id(client_id),
        expiration_epoch_hours=_fits(
            epoch_hours(expiration_ms) + ORDER_EXPIRATION_BUFFER_HOURS, _HOURS_BITS
        ),
    )


def withdrawal_hash(
    *,
    collateral_asset_id: int,
    position_id: int,
    amount: Decimal,
    client_id: str,
    expiration_ms: int,
) -> int:
    packed = (_WITHDRAWAL_PREFIX << _POSITION_BITS) + _fits(position_id, _POSITION_BITS)
    packed = (packed << _NONCE_BITS) + nonce_from_client_id(client_id)
    packed = (packed << _AMOUNT_BITS) + _exact_quantums(amount, COLLATERAL_RESOLUTION)
    packed = (packed << _HOURS_BITS) + _fits(epoch_hours(expiration_ms), _HOURS_BITS)
    packed <<= _WITHDRAWAL_PADDING_BITS
    return pedersen_hash(collateral_asset_id, packed)


def erc20_fact_condition(
    *,
    fact_registry: str,
    recipient: str,
    token: str,
    token_amount: Decimal,
    salt: int,
) -> int:
    """The condition of a fast withdrawal: the L1 fact "this token amount reached the recipient"."""
    amount = _exact_quantums(token_amount, COLLATERAL_RESOLUTION)
    fact = keccak(
        bytes.fromhex(recipient[2:])
        + amount.to_bytes(32, "big")
        + bytes.fromhex(token[2:])
        + salt.to_bytes(32, "big")
    )
    return int.from_bytes(keccak(bytes.fromhex(fact_registry[2:]) + fact), "big") & _MASK_250


def conditional_transfer_hash(
    *,
    collateral_asset_id: int,
    sender_position_id: int,
    receiver_position_id: int,
    receiver_public_key: int,
    condition: int,
    amount: Decimal,
    client_id: str,
    expiration_ms: int,
) -> int:
    sender = _fits(sender_position_id, _POSITION_BITS)
    receiver = _fits(receiver_position_id, _POSITION_BITS)
    part_1 = pedersen_hash(
        pedersen_hash(pedersen_hash(collateral_asset_id, 0), receiver_public_key), condition
    )
    part_2 = (((sender << _POSITION_BITS) + receiver) << _POSITION_BITS) + sender
    part_2 = (part_2 << _NONCE_BITS) + nonce_from_client_id(client_id)
    part_3 = (_CONDITIONAL_TRANSFER_PREFIX << _AMOUNT_BITS) + _exact_quantums(
        amount, COLLATERAL_RESOLUTION
    )
    part_3 = (part_3 << _AMOUNT_BITS) + 0  # fees are not supported on conditional transfers
    part_3 = (part_3 << _HOURS_BITS) + _fits(epoch_hours(expiration_ms), _HOURS_BITS)
    part_3 <<= _CONDITIONAL_TRANSFER_PADDING_BITS
    return pedersen_hash(pedersen_hash(part_1, part_2), part_3)
