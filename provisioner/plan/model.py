"""The plan as data: it renders to text/JSON/markdown and round-trips through a file. No secret ever enters it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from provisioner.plan.ages import KeyAge
from provisioner.plan.params import (
    ApiKeyParams,
    ApproveParams,
    DeleteApiKeyParams,
    DepositParams,
    OnboardParams,
    RecordAccountParams,
    RegisterParams,
    RetireApiKeyParams,
    RotateApiKeyParams,
    StarkKeyParams,
    StepParams,
    from_wire,
    to_wire,
)

PLAN_FORMAT_VERSION = 1


class StepKind(StrEnum):
    """The onboarding steps that change something, in the order an account needs them.

    - stark_key: derive the STARK key pair and store it in Vault
    - onboard: POST /v3/onboarding
    - record_account: complete the STARK secret with position and account id
    - register: registration signature, then registerUser on L1
    - approve: ERC-20 approve to the exchange
    - deposit: exchange deposit for the difference
    - api_key: the default key is recovered, a named one created (POST /v3/api-keys); then stored
    - replace_api_key: the stored key is gone at dYdX: create a new one, update Vault
    - delete_api_key: only with --prune-api-keys, never the default key
    - rotate_api_key: a named key older than its rotate_after (or ``provision rotate``): a new
      key is created and stored as a new version of the same destination
    - retire_api_key: the key a rotation replaced, deleted at dYdX once its overlap has passed
    """

    STARK_KEY = "stark_key"
    ONBOARD = "onboard"
    RECORD_ACCOUNT = "record_account"
    REGISTER = "register"
    APPROVE = "approve"
    DEPOSIT = "deposit"
    API_KEY = "api_key"
    REPLACE_API_KEY = "replace_api_key"
    DELETE_API_KEY = "delete_api_key"
    ROTATE_API_KEY = "rotate_api_key"
    RETIRE_API_KEY = "retire_api_key"


P = TypeVar("P", bound=StepParams)

PARAMS: dict[StepKind, type[StepParams]] = {
    StepKind.STARK_KEY: StarkKeyParams,
    StepKind.ONBOARD: OnboardParams,
    StepKind.RECORD_ACCOUNT: RecordAccountParams,
    StepKind.REGISTER: RegisterParams,
    StepKind.APPROVE: ApproveParams,
    StepKind.DEPOSIT: DepositParams,
    StepKind.API_KEY: ApiKeyParams,
    StepKind.REPLACE_API_KEY: ApiKeyParams,
    StepKind.DELETE_API_KEY: DeleteApiKeyParams,
    StepKind.ROTATE_API_KEY: RotateApiKeyParams,
    StepKind.RETIRE_API_KEY: RetireApiKeyParams,
}


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "delete": "-"}[self.value]


@dataclass(frozen=True)
class Step:
    id: str
    account: str
    kind: StepKind
    action: Action
    summary: str
    reason: str
    depends_on: tuple[str, ...] = ()
    blocked: str | None = None
    # Non-secret, typed per kind (PARAMS): amounts in base units, paths, key names.
    params: StepParams = field(kw_only=True)

    def __post_init__(self) -> None:
        if type(self.params) is not PARAMS[self.kind]:
            raise TypeError(
                f"step {self.id}: {self.kind.value} takes {PARAMS[self.kind].__name__}, "
                f"not {type(self.params).__name__}"
            )

    @property
    def symbol(self) -> str:
        return "!" if self.blocked else self.action.symbol

    def params_as(self, cls: type[P]) -> P:
        """The params, typed for the caller that knows the kind (checked, not cast)."""
        if not isinstance(self.params, cls):
            raise TypeError(
                f"step {self.id}: params are {type(self.params).__name__}, not {cls.__name__}"
            )
        return self.params

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "kind": self.kind.value,
            "action": self.action.value,
            "summary": self.summary,
            "reason": self.reason,
            "depends_on": list(self.depends_on),
            "blocked": self.blocked,
            "params": to_wire(self.params),
        }

    @classmethod
    def from_dict(cls, s: Mapping[str, Any]) -> Step:
        kind = StepKind(s["kind"])
        return cls(
            id=s["id"],
            account=s["account"],
            kind=kind,
            action=Action(s["action"]),
            summary=s["summary"],
            reason=s["reason"],
            depends_on=tuple(s.get("depends_on", ())),
            blocked=s.get("blocked"),
            params=from_wire(PARAMS[kind], s.get("params", {})),
        )


@dataclass(frozen=True)
class Note:
    """Something the user should know that is not a change: drift, a lower target, keys left in place.

    A ``pending`` note is a transaction not final yet (waiting for confirmations, for the node,
    for a remote signer): the plan counts it as a change, so ``--detailed-exitcode`` exits 2."""

    level: str  # info | warning | drift | pending
    message: str


@dataclass(frozen=True)
class PlanOptions:
    """What the plan was asked for; a saved plan is applied only with the same options."""

    prune_api_keys: bool = False
    targets: tuple[str, ...] = ()
    shard: str | None = None
    derive: bool = False  # remote signers derive a STARK key Vault lacks (``--derive``)
    # ``provision rotate``'s: never in a plan file (``plan --out`` cannot set them, and
    # ``rotate`` saves no plan), so a saved plan always has the defaults. A plan made with
    # them holds only rotation steps: read back without them, it would not match a fresh
    # plan of the same facts, and ``apply PLAN`` refuses it (plan/saved.py).
    rotate: tuple[str, str] | None = None  # (account, key): rotate that key now, nothing else
    rotation_only: bool = False  # ``rotate --due``: only the rotations and retirements due

    def differences(self, other: PlanOptions) -> list[str]:
        """What differs from ``other``, as the command-line options that say it."""
        out = []
        if self.prune_api_keys != other.prune_api_keys:
            out.append("--prune-api-keys")
        if tuple(sorted(self.targets)) != tuple(sorted(other.targets)):
            out.append("--target")
        if self.shard != other.shard:
            out.append("--shard")
        if self.derive != other.derive:
            out.append("--derive")
        if self.rotate != other.rotate:
            out.append("rotate --account --key")
        if self.rotation_only != other.rotation_only:
            out.append("rotate --due")
        return out


@dataclass(frozen=True)
class AccountPlan:
    name: str
    address: str
    steps: tuple[Step, ...] = ()
    notes: tuple[Note, ...] = ()
    api_keys: tuple[KeyAge, ...] = ()  # each key's age and next rotation

    @property
    def converged(self) -> bool:
        return not self.steps


@dataclass(frozen=True)
class Summary:
    add: int
    change: int
    destroy: int
    blocked: int
    pending: int = 0  # transactions not final yet (see Note)

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy or self.blocked or self.pending)


@dataclass(frozen=True)
class Plan:
    manifest: str
    network: str
    chain_id: int
    fingerprint: str  # of the facts the plan came from; apply refuses a plan whose facts changed
    accounts: tuple[AccountPlan, ...]
    created_at: str = ""
    format_version: int = PLAN_FORMAT_VERSION
    # what an untrusted plan (--untrusted-manifest) did not check; apply and the drift check do
    not_checked: tuple[str, ...] = ()
    options: PlanOptions = PlanOptions()
    # when the facts were read (epoch seconds): the "now" of the API key ages and rotations in
    # it. ``apply PLAN`` plans again at this same time, so a reviewed rotation is not refused
    # because its key grew older since (only changed facts make a saved plan stale)
    observed_at: float | None = None

    def steps(self) -> list[Step]:
        return [s for acc in self.accounts for s in acc.steps]

    def summary(self) -> Summary:
        steps = self.steps()
        runnable = [s for s in steps if not s.blocked]
        return Summary(
            add=sum(1 for s in runnable if s.action is Action.CREATE),
            change=sum(1 for s in runnable if s.action is Action.UPDATE),
            destroy=sum(1 for s in runnable if s.action is Action.DELETE),
            blocked=sum(1 for s in steps if s.blocked),
            pending=sum(1 for a in self.accounts for n in a.notes if n.level == "pending"),
        )

    def to_dict(self) -> dict[str, Any]:
        s = self.summary()
        return {
            "manifest": self.manifest,
            "network": self.network,
            "chain_id": self.chain_id,
            "fingerprint": self.fingerprint,
            "accounts": [
                {
                    "name": a.name,
                    "address": a.address,
                    "steps": [step.to_dict() for step in a.steps],
                    "notes": [{"level": n.level, "message": n.message} for n in a.notes],
                    "api_keys": [k.to_dict() for k in a.api_keys],
                }
                for a in self.accounts
            ],
            "created_at": self.created_at,
            "observed_at": self.observed_at,
            "format_version": self.format_version,
            "not_checked": list(self.not_checked),
            "options": {
                "prune_api_keys": self.options.prune_api_keys,
                "targets": list(self.options.targets),
                "shard": self.options.shard,
                "derive": self.options.derive,
            },
            "summary": {
                "add": s.add,
                "change": s.change,
                "destroy": s.destroy,
                "blocked": s.blocked,
                "pending": s.pending,
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        if data.get("format_version") != PLAN_FORMAT_VERSION:
            raise ValueError(
                f"plan format version {data.get('format_version')!r}, expected {PLAN_FORMAT_VERSION}"
            )
        accounts = tuple(
            AccountPlan(
                name=a["name"],
                address=a["address"],
                steps=tuple(Step.from_dict(s) for s in a.get("steps", ())),
                notes=tuple(
                    Note(level=n["level"], message=n["message"]) for n in a.get("notes", ())
                ),
                api_keys=tuple(KeyAge.from_dict(k) for k in a.get("api_keys", ())),
            )
            for a in data["accounts"]
        )
        return cls(
            manifest=data["manifest"],
            network=data["network"],
            chain_id=int(data["chain_id"]),
            fingerprint=data["fingerprint"],
            accounts=accounts,
            created_at=data.get("created_at", ""),
            observed_at=None if data.get("observed_at") is None else float(data["observed_at"]),
            not_checked=tuple(str(n) for n in data.get("not_checked", ())),
            options=PlanOptions(
                prune_api_keys=bool(data["options"]["prune_api_keys"]),
                targets=tuple(str(t) for t in data["options"]["targets"]),
                shard=data["options"]["shard"],
                derive=bool(data["options"].get("derive", False)),
            ),
        )


def propagate_blocks(steps: list[Step]) -> tuple[Step, ...]:
    """The steps, each waiting for a blocked one blocked too (the planner's last pass)."""
    blocked: dict[str, str] = {}
    out = []
    for step in steps:
        if step.blocked is None:
            waiting = next((d for d in step.depends_on if d in blocked), None)
            if waiting is not None:
                step = replace(step, blocked=f"waits for blocked step {waiting}")
        if step.blocked is not None:
            blocked[step.id] = step.blocked
        out.append(step)
    return tuple(out)
