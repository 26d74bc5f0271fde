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

    def refusal(self, amount: int, what: str) -> str | None:
        """Why charging ``amount`` now would be refused, or None; nothing is taken. What is
        asked before an approve, so no allowance goes out for a deposit the ceiling refuses
        (the deposit itself is charged when it is sent)."""
        with self._lock:
            return self._refusal(amount, what)

    def charge(self, amount: int, what: str) -> None:
        """Take ``amount`` (base units) for ``what``, or raise OverBudget naming the ceiling."""
        with self._lock:
            refused = self._refusal(amount, what)
            if refused is not None:
                raise OverBudget(refused)
            self.spent += amount

    def _refusal(self, amount: int, what: str) -> str | None:
        total = self.spent + amount
        for name, ceiling in self.ceilings:
            if total > ceiling:
                return (
                    f"{what} of {_usdc(amount)} USDC would bring this run's deposits to "
                    f"{_usdc(total)} USDC, over {name} of {_usdc(ceiling)} USDC; not sent"
                )
        return None

    def refund(self, amount: int) -> None:
        """A charged deposit that can never land (its nonce went to another transaction)."""
        with self._lock:
            self.spent -= amount


def _usdc(base_units: int) -> str:
    return format_usdc(from_base_units(base_units))
