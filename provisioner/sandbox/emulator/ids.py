"""Ids as v3 made them: UUIDv5 (SHA-1) in dYdX's namespace."""

from __future__ import annotations

import uuid

DYDX_NAMESPACE = uuid.UUID("0f9da948-a6fb-4c45-9edc-4685c3f3317d")


def user_id(address: str) -> str:
    return str(uuid.uuid5(DYDX_NAMESPACE, address.lower()))


def account_id(address: str, account_number: int = 0) -> str:
    return str(uuid.uuid5(DYDX_NAMESPACE, user_id(address) + str(account_number)))


def deposit_transfer_id(tx_hash: str, log_index: int) -> str:
    """A stable id for the transfer that one LogDeposit event becomes."""
    return str(uuid.uuid5(DYDX_NAMESPACE, f"deposit:{tx_hash.lower()}:{log_index}"))
