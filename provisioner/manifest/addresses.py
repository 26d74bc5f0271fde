"""Ethereum addresses in the manifest: well-formed, and EIP-55 checksummed when written in mixed case."""

from __future__ import annotations

import re

from provisioner.ethaddress import eip55

ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class AddressProblem(ValueError):
    """Why a value is not a usable address; ``str()`` is safe to show."""


def checksummed(address: str) -> str:
    """The EIP-55 form of ``address``. Mixed case must already be a valid checksum: it guards against typos."""
    if not ADDRESS.fullmatch(address):
        raise AddressProblem(f"{address[:48]!r} is not a 0x-prefixed 40-hex-digit address")
    digits = address[2:]
    proper = eip55(address)
    if digits not in (digits.lower(), digits.upper()) and proper != address:
        # The fix is not shown on purpose: a typo with a "corrected" checksum is still a typo.
        raise AddressProblem(
            f"{address} fails its EIP-55 checksum (a typo, or changed letter case?)"
        )
    return str(proper)
