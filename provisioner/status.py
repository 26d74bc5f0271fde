"""``status``: one row per account from the observed facts (a pure function; the CLI renders it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provisioner.facts import AccountFacts, WorldFacts
from provisioner.manifest.durations import format_duration
from provisioner.manifest.model import AccountSpec
from provisioner.money import format_usdc, from_base_units
from provisioner.plan.ages import KeyAge
from provisioner.plan.rotation import key_ages
from provisioner.records import API_FIELDS, API_KEY


@dataclass(frozen=True)
class AccountStatus:
    account: str
    address: str
    onboarded: bool | None  # None: could not tell
    # None: the STARK key is neither in Vault nor derived, so the chain could not be asked
    registered: bool | None
    deposited: str | None  # USDC, formatted
    pending: str
    target: str
    stark_key_in_vault: bool
    api_keys: tuple[tuple[str, bool], ...]  # (name, present in Vault and, if known, at dYdX)
    stark_key_derived: bool = False  # not in Vault, derived in memory from the signer to look
    key_ages: tuple[KeyAge, ...] = ()
    observed_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "address": self.address,
            "onboarded": self.onboarded,
            "registered": self.registered,
            "deposited": self.deposited,
            "pending": self.pending,
            "target": self.target,
            "stark_key_in_vault": self.stark_key_in_vault,
            "stark_key_derived": self.stark_key_derived,
            "api_keys": dict(self.api_keys),
            "api_key_rotation": [k.to_dict() for k in self.key_ages],
        }

    def rotation_text(self) -> str:
        """Per key: its age and when it is next rotated ("quoter 3 d, next in 87 d")."""
        parts = []
        for k in self.key_ages:
            if k.age is None:
                continue
            text = f"{k.name} {format_duration(k.age)}"
            if k.next_rotation is not None and self.observed_at is not None:
                due = k.next_rotation - self.observed_at
                text += f", next in {format_duration(due)}" if due > 0 else ", rotation due"
            if (
                k.previous_key
                and k.previous_retires_at is not None
                and self.observed_at is not None
            ):
                left = k.previous_retires_at - self.observed_at
                text += (
                    f", previous key retires in {format_duration(left)}"
                    if left > 0
                    else ", previous key to retire"
                )
            parts.append(text)
        return "; ".join(parts) or "-"


def account_status(spec: AccountSpec, f: AccountFacts) -> AccountStatus:
    keys = tuple(
        (
            name,
            bool(
                e.exists
                and e.fields >= API_FIELDS
                and (f.dydx_api_keys is None or e.get(API_KEY) in f.dydx_api_keys)
            ),
        )
        for name, e in f.api_secrets
    )
    owner_known = not f.stark_key_unknown or f.derived_stark_key is not None
    return AccountStatus(
        account=spec.name,
        address=spec.address,
        onboarded=f.user_exists,
        registered=(
            f.stark_key_owner is not None and f.stark_key_owner.lower() == spec.address.lower()
        )
        if owner_known
        else None,
        deposited=None if f.stark_key_unknown else format_usdc(from_base_units(f.deposited)),
        pending=format_usdc(from_base_units(f.pending_deposits + f.unconfirmed_deposits)),
        target=format_usdc(spec.deposit),
        stark_key_in_vault=f.stark_secret.exists,
        api_keys=keys,
        stark_key_derived=f.derived_stark_key is not None,
        key_ages=key_ages(spec, f),
        observed_at=f.observed_at,
    )


def status_rows(
    accounts: list[AccountSpec] | tuple[AccountSpec, ...], facts: WorldFacts
) -> list[AccountStatus]:
    return [account_status(spec, facts.account(spec.name)) for spec in accounts]
