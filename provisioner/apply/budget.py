"""The run-wide deposit budget: the ceilings (``max_deposit``, ``--max-deposit``) held where money
moves, not only where it is planned. Every deposit a run broadcasts, new or journaled and sent
again, is charged here first; one that would pass the ceiling is refused before it is sent."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from provisioner.errors import ProvisionerError
from provisioner.money import format_usdc, from_base_units


class OverBudget(ProvisionerError):
    """A deposit would take the run past its ceiling; nothing was sent."""


@dataclass
class DepositBudget:
    """``ceilings``: (what, base units) pairs, e.g. ("--max-deposit", 10_000_000); none: no limit."""

    ceilings: tuple[tuple[str, int], ...] = ()
    spent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def charge(self, amount: int, what: str) -> None:
        """Take ``amount`` (base units) for ``what``, or raise OverBudget naming the ceiling."""
        with self._lock:
            total = self.spent + amount
            for name, ceiling in self.ceilings:
                if total > ceiling:
                    raise OverBudget(
                        f"{what} of {_usdc(amount)} USDC would bring this run's deposits to "
                        f"{_usdc(total)} USDC, over {name} of {_usdc(ceiling)} USDC; not sent"
                    )
            self.spent = total

    def refund(self, amount: int) -> None:
        """A charged deposit that can never land (its nonce went to another transaction)."""
        with self._lock:
            self.spent -= amount


def _usdc(base_units: int) -> str:
    return format_usdc(from_base_units(base_units))
