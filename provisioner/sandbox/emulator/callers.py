"""Who an authenticated call is for: its user, and the account number it names."""

from __future__ import annotations

import re

from provisioner.sandbox.emulator import errors
from provisioner.sandbox.emulator.errors import ApiError
from provisioner.sandbox.emulator.runtime import Call
from provisioner.sandbox.emulator.store import User

_SMALL_INT = re.compile(r"^[0-9]{1,9}$")


def user_of(call: Call) -> User:
    assert call.address is not None
    user = call.emulator.store.user(call.address)
    if user is None:
        raise ApiError(404, errors.USER_NOT_FOUND)
    return user


def account_number(call: Call) -> int:
    """``DYDX-ACCOUNT-NUMBER`` (default 0): the account an order or withdrawal is for."""
    text = call.request.headers.get("DYDX-ACCOUNT-NUMBER", "0")
    if not _SMALL_INT.match(text):
        raise errors.invalid("DYDX-ACCOUNT-NUMBER", "headers", text)
    return int(text)
