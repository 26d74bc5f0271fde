"""Typed parameters of each step kind, and their one wire form (``params`` in a plan file).

A plan file keeps params as a flat object of strings (provisioner/schemas/plan.schema.json): amounts
in USDC base units as decimal strings, Vault paths, versions, key names and ids. This
module is the only place that turns those strings into values and back; steps, the
executor and the CLI read typed attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from provisioner.records import DEFAULT_API_KEY

DydxUser = Literal["exists", "absent", "unknown"]
_DYDX_USER: tuple[DydxUser, ...] = ("exists", "absent", "unknown")


def _wire(name: str, parse: Callable[[str], Any] = str) -> Any:
    """A field's name in the plan file and how its text is read back."""
    return field(metadata={"wire": name, "parse": parse})


def _optional(name: str, parse: Callable[[str], Any] = str) -> Any:
    return field(default=None, metadata={"wire": name, "parse": parse})


def _dydx_user(text: str) -> DydxUser:
    for value in _DYDX_USER:
        if text == value:
            return value
    raise ValueError(f"dydx_user {text!r}: expected one of {', '.join(_DYDX_USER)}")


def _base_units(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"amount {text!r}: expected base units >= 0")
    return value


@dataclass(frozen=True)
class StarkKeyParams:
    path: str = _wire("path")
    # The Vault version seen, and whether dYdX knew the user: absent on a blocked step.
    version: int | None = _optional("version", int)
    dydx_user: DydxUser | None = _optional("dydx_user", _dydx_user)


@dataclass(frozen=True)
class OnboardParams:
    pass


@dataclass(frozen=True)
class RecordAccountParams:
    path: str = _wire("path")
    version: int = _wire("version", int)


@dataclass(frozen=True)
class RegisterParams:
    pass


UNLIMITED_ALLOWANCE = 2**256 - 1  # what `allowance: max` approves


@dataclass(frozen=True)
class ApproveParams:
    """``amount``: the allowance planned; ``target``: the deposit target the step recomputes the
    remaining deposit from when it runs (absent in older plans: then ``amount`` is approved)."""

    amount_base_units: int = _wire("amount", _base_units)
    target_base_units: int | None = _optional("target", _base_units)

    @property
    def unlimited(self) -> bool:
        return self.amount_base_units == UNLIMITED_ALLOWANCE


@dataclass(frozen=True)
class DepositParams:
    """``amount``: the top-up planned; ``target``: what the step recomputes it from when it runs."""

    amount_base_units: int = _wire("amount", _base_units)
    target_base_units: int = _wire("target", _base_units)


@dataclass(frozen=True)
class ApiKeyParams:
    """Storing (or replacing) the manifest key ``name`` at ``path``."""

    path: str = _wire("path")
    name: str = _wire("name")
    version: int | None = _optional("version", int)

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_API_KEY


@dataclass(frozen=True)
class DeleteApiKeyParams:
    key_id: str = _wire("key")


def _seconds(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"overlap {text!r}: expected seconds >= 0")
    return value


@dataclass(frozen=True)
class RotateApiKeyParams:
    """Replacing the key ``replaces`` stored at ``path`` (version ``version``) with a new one."""

    path: str = _wire("path")
    name: str = _wire("name")
    version: int = _wire("version", int)
    replaces: str = _wire("replaces")


@dataclass(frozen=True)
class RetireApiKeyParams:
    """Deleting at dYdX the key ``key_id`` that a rotation of ``name`` replaced, once the
    new key has been stored at ``path`` for ``overlap`` seconds (checked again when it runs)."""

    path: str = _wire("path")
    name: str = _wire("name")
    key_id: str = _wire("key")
    overlap: int = _wire("overlap", _seconds)


StepParams = (
    StarkKeyParams
    | OnboardParams
    | RecordAccountParams
    | RegisterParams
    | ApproveParams
    | DepositParams
    | ApiKeyParams
    | DeleteApiKeyParams
    | RotateApiKeyParams
    | RetireApiKeyParams
)


def to_wire(params: StepParams) -> dict[str, str]:
    out = {}
    for f in fields(params):
        value = getattr(params, f.name)
        if value is not None:
            out[f.metadata["wire"]] = str(value)
    return out


def from_wire(cls: type[StepParams], data: Mapping[str, Any]) -> StepParams:
    """``cls`` from a plan file's params; ValueError naming the field that is missing or wrong."""
    values = {}
    for f in fields(cls):
        wire = f.metadata["wire"]
        if wire not in data:
            if f.default is None:
                continue
            raise ValueError(f"params: {wire!r} missing")
        text = data[wire]
        if not isinstance(text, str):
            raise ValueError(f"params: {wire!r} is not a string")
        values[f.name] = f.metadata["parse"](text)
    return cls(**values)
