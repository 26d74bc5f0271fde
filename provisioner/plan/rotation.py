"""API key rotation, planned: which named keys are older than their ``rotate_after``, which
replaced keys have outlived their overlap, and each key's age. Pure: "now" is the time the
facts were read (``AccountFacts.observed_at``), never a clock read here.

A rotation creates a new key at dYdX and stores it as a new version of the same Vault
destination; its custom_metadata names the new key, when dYdX created it and the key it
replaces (records.ROTATION_METADATA). The replaced key keeps working for
``rotation_overlap``, so that bots reading the destination pick up the new version; the
first apply after that retires it (deletes it at dYdX). Only a key those records name as
replaced is ever retired, never the key the destination holds, never the default key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from provisioner.errors import ProvisionerError
from provisioner.facts import AccountFacts, VaultEntry
from provisioner.manifest.durations import format_duration
from provisioner.manifest.model import AccountSpec, ApiKeySpec, Manifest
from provisioner.plan.ages import KeyAge, parse_iso
from provisioner.plan.model import Action, Note, Step, StepKind
from provisioner.plan.params import RetireApiKeyParams, RotateApiKeyParams, StepParams
from provisioner.records import (
    API_FIELDS,
    API_KEY,
    DEFAULT_API_KEY,
    META_KEY_CREATED,
    META_KEY_ID,
    META_REPLACES,
)

_SIGNED = "creating an API key is signed with the Ethereum key (POST /v3/api-keys)"
_DELETE_SIGNED = "deleting an API key is signed with the Ethereum key (DELETE /v3/api-keys)"


@dataclass(frozen=True)
class StoredKey:
    """What a destination's data and our custom_metadata say about the key it holds."""

    key_id: str
    created_at: float | None
    replaces: str | None  # the previous key, as our record names it; never the key held

    @classmethod
    def of(cls, entry: VaultEntry) -> StoredKey | None:
        key_id = entry.get(API_KEY)
        if not key_id:
            return None
        if entry.meta(META_KEY_ID) != key_id:
            # no rotation record, or a stale one (a run died between the metadata and the
            # data write): the age is the stored version's
            return cls(key_id, entry.written_at, None)
        created = parse_iso(entry.meta(META_KEY_CREATED))
        replaces = entry.meta(META_REPLACES)
        return cls(
            key_id,
            created if created is not None else entry.written_at,
            replaces if replaces and replaces != key_id else None,
        )


def key_age(key: ApiKeySpec, facts: AccountFacts) -> KeyAge:
    entry = facts.api_secret(key.name)
    stored = StoredKey.of(entry) if entry is not None and entry.is_ours(facts.name) else None
    now = facts.observed_at
    rotate_after = None if key.is_default else key.rotate_after
    if stored is None:
        return KeyAge(key.name, None, None, None, rotate_after, None)
    created = stored.created_at
    age = now - created if now is not None and created is not None else None
    listed = facts.dydx_api_keys
    previous = (
        stored.replaces
        if stored.replaces and (listed is None or stored.replaces in listed)
        else None
    )
    return KeyAge(
        name=key.name,
        key_id=stored.key_id,
        created_at=created,
        age=age,
        rotate_after=rotate_after,
        next_rotation=created + rotate_after
        if created is not None and rotate_after is not None
        else None,
        previous_key=previous,
        previous_retires_at=created + key.rotation_overlap
        if previous and created is not None
        else None,
    )


def key_ages(spec: AccountSpec, facts: AccountFacts) -> tuple[KeyAge, ...]:
    return tuple(key_age(key, facts) for key in spec.api_keys)


class StepSink(Protocol):
    """What the planner's account builder offers this module."""

    spec: AccountSpec
    facts: AccountFacts
    notes: list[Note]
    onboard_step: str | None

    def needs_signer(self, why: str) -> str | None: ...

    def add(
        self,
        kind: StepKind,
        action: Action,
        summary: str,
        reason: str,
        *,
        suffix: str = "",
        params: StepParams,
        depends: tuple[str | None, ...] = (),
        blocked: str | None = None,
    ) -> str: ...


def plan_rotations(b: StepSink, forced: frozenset[str] = frozenset()) -> frozenset[str]:
    """Rotation and retirement steps for the account's named keys (``forced``: key names to
    rotate whatever their age, from ``provision rotate``). Returns the ids of replaced keys
    still live at dYdX: tracked here, so not "unknown keys" for the planner."""
    tracked: set[str] = set()
    for key in b.spec.api_keys:
        if key.is_default:
            continue
        previous = _plan_key(b, key, key.name in forced)
        if previous:
            tracked.add(previous)
    return frozenset(tracked)


def _plan_key(b: StepSink, key: ApiKeySpec, forced: bool) -> str | None:
    facts = b.facts
    entry = facts.api_secret(key.name)
    listed = facts.dydx_api_keys
    stored = StoredKey.of(entry) if entry is not None and entry.is_ours(facts.name) else None
    usable = (
        entry is not None
        and stored is not None
        and entry.fields >= API_FIELDS
        and listed is not None
        and stored.key_id in listed
    )
    if entry is None or stored is None or not usable or listed is None:
        if forced:
            b.add(
                StepKind.ROTATE_API_KEY,
                Action.UPDATE,
                f"rotate {key.name} now",
                "asked for (provision rotate)",
                suffix=key.name,
                blocked=f"API key {key.name} is not both at dYdX and in Vault at {key.secret_path}; "
                "'provision apply' creates it first",
                params=RotateApiKeyParams(
                    path=key.secret_path, name=key.name, version=0, replaces=""
                ),
            )
        return None
    now = facts.observed_at
    since = now - stored.created_at if now is not None and stored.created_at is not None else None
    previous = stored.replaces if stored.replaces in listed else None
    retire_step = None
    if previous is not None and since is not None and since >= key.rotation_overlap:
        retire_step = b.add(
            StepKind.RETIRE_API_KEY,
            Action.DELETE,
            f"retire the previous {key.name} key, replaced {format_duration(since)} ago",
            f"key {previous} was replaced by {stored.key_id}; its overlap of "
            f"{format_duration(key.rotation_overlap)} has passed",
            suffix=f"{key.name}/{previous}",
            depends=(b.onboard_step,),
            blocked=b.needs_signer(_DELETE_SIGNED),
            params=RetireApiKeyParams(
                path=key.secret_path, name=key.name, key_id=previous, overlap=key.rotation_overlap
            ),
        )
    elif previous is not None and since is not None:
        b.notes.append(
            Note(
                "info",
                f"the previous {key.name} key {previous} keeps working for "
                f"{format_duration(key.rotation_overlap - since)} more (overlap "
                f"{format_duration(key.rotation_overlap)}); the first apply after that deletes it",
            )
        )
    elif previous is not None:
        b.notes.append(
            Note(
                "warning",
                f"the previous {key.name} key {previous} is still live; its age is unknown",
            )
        )
    age = f"{format_duration(since)} old" if since is not None else "age unknown"
    due = key.rotate_after is not None and since is not None and since >= key.rotate_after
    if not (due or forced):
        return previous
    if previous is not None and retire_step is None:
        waiting = (
            f"the previous {key.name} key {previous} is still in its overlap; rotating again "
            "before it is retired would leave it live and untracked"
        )
        if forced:
            b.add(
                StepKind.ROTATE_API_KEY,
                Action.UPDATE,
                f"rotate {key.name} now: {age}",
                "asked for (provision rotate)",
                suffix=key.name,
                blocked=waiting,
                params=_rotate_params(key, entry, stored),
            )
        else:
            b.notes.append(Note("info", f"rotation of {key.name} is due ({age}), but {waiting}"))
        return previous
    policy = f"policy {format_duration(key.rotate_after)}" if key.rotate_after else "no policy"
    rotate_step = b.add(
        StepKind.ROTATE_API_KEY,
        Action.UPDATE,
        f"rotate {key.name}: {age}, {policy}"
        if not forced
        else f"rotate {key.name} now: {age}, {policy}",
        "asked for (provision rotate)"
        if forced
        else f"key {stored.key_id} is older than rotate_after",
        suffix=key.name,
        depends=(b.onboard_step, retire_step),
        blocked=b.needs_signer(_SIGNED),
        params=_rotate_params(key, entry, stored),
    )
    if key.rotation_overlap == 0:
        b.add(
            StepKind.RETIRE_API_KEY,
            Action.DELETE,
            f"retire the previous {key.name} key {stored.key_id} once the new one is stored (no overlap)",
            "rotation_overlap is 0s",
            suffix=f"{key.name}/{stored.key_id}",
            depends=(rotate_step,),
            blocked=b.needs_signer(_DELETE_SIGNED),
            params=RetireApiKeyParams(
                path=key.secret_path, name=key.name, key_id=stored.key_id, overlap=0
            ),
        )
    return previous


def _rotate_params(key: ApiKeySpec, entry: VaultEntry, stored: StoredKey) -> RotateApiKeyParams:
    return RotateApiKeyParams(
        path=key.secret_path, name=key.name, version=entry.version, replaces=stored.key_id
    )


def selected(
    steps: list[Step],
    rotate: tuple[str, str] | None,
    forced: str | None,
    *,
    only_rotations: bool,
) -> list[Step]:
    """The account's steps a command asked for: ``provision rotate --account --key`` (``rotate``;
    ``forced``: the key when it is this account's), ``rotate --due``, or all of them."""
    if rotate is not None:
        return only_rotation_of(steps, forced) if forced else []
    return only_rotation_of(steps) if only_rotations else steps


def only_rotation_of(steps: list[Step], key_name: str | None = None) -> list[Step]:
    """``provision rotate``: the rotation and retirement steps (of the key ``key_name``), nothing else."""
    return [
        s
        for s in steps
        if isinstance(s.params, RotateApiKeyParams | RetireApiKeyParams)
        and (key_name is None or s.params.name == key_name)
    ]


class NotRotatable(ProvisionerError):
    pass


def rotation_target(manifest: Manifest, account: str, key: str) -> tuple[str, str]:
    """``provision rotate --account --key``, checked against the manifest: (account, key)."""
    try:
        spec = manifest.account(account)
    except KeyError:
        raise NotRotatable(f"--account {account}: no such account in {manifest.path}") from None
    names = [k.name for k in spec.api_keys]
    if key not in names:
        raise NotRotatable(
            f"--key {key}: account {account} has no API key {key!r} in {manifest.path} "
            f"(it has: {', '.join(names) or 'none'})"
        )
    if key == DEFAULT_API_KEY:
        raise NotRotatable(
            "--key default: the default API key cannot be rotated: dYdX derives it from the "
            "wallet's onboarding signature and it is never deleted; rotate a named key"
        )
    return account, key
