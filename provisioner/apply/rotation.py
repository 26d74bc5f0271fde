"""The rotation steps: a new API key in place of an old one, then the old one retired once its
overlap has passed (plan/rotation.py plans them). They create and delete keys through the same
client, journal and Vault writes as the other API key steps (apply/steps.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from provisioner.apply.context import AccountContext, StepFailed
from provisioner.apply.events import Outcome
from provisioner.apply.steps import (
    _api_record,
    _stored,
    _unstored_key_deleted,
    _write,
    journaled_create,
)
from provisioner.failpoints import failpoint
from provisioner.manifest.durations import format_duration
from provisioner.plan.ages import iso
from provisioner.plan.model import Step, StepKind
from provisioner.plan.params import RetireApiKeyParams, RotateApiKeyParams
from provisioner.plan.rotation import StoredKey
from provisioner.records import API_FIELDS, META_KEY_CREATED, META_KEY_ID, META_REPLACES


def rotate_api_key(ctx: AccountContext, step: Step) -> Outcome:
    """Create a new key at dYdX and store it as a new version of the same destination; the key
    it replaces keeps working until its overlap ends (``retire_api_key``).

    Stages, each survivable: the intent journaled (keys listed before); the key created; its
    id noted in the intent; custom_metadata naming the new key, its creation time and the key
    it replaces; the data written with check-and-set; the intent forgotten. Killed before the
    data write, the next apply finds the new key unstored and deletes it (the old key is
    untouched and still stored); killed after it, both keys are live and the new one stored.
    """
    params = step.params_as(RotateApiKeyParams)
    name, path = params.name, params.path
    stored = ctx.conn.vault.read(path)
    if not (stored.entry.is_ours(ctx.spec.name) and stored.entry.fields >= API_FIELDS):
        raise StepFailed(f"{path} holds no complete API key of {ctx.spec.name}; not rotating it")
    held = StoredKey.of(stored.entry)
    if held is None or held.key_id != params.replaces:
        if held is not None and held.replaces == params.replaces:
            ctx.log(f"API key {name} was already rotated to {held.key_id} (found by a fresh check)")
            return Outcome(False, f"API key {name} was already rotated to {held.key_id}")
        raise StepFailed(
            f"{path} holds key {held.key_id if held else 'none'}, not {params.replaces} as planned; plan again"
        )
    if params.replaces == ctx.default_key_id():
        raise StepFailed(f"{path} holds the default API key, which is never rotated")
    listed = ctx.conn.dydx.list_api_keys(ctx.spec.address, ctx.credentials())
    if held.replaces is not None and held.replaces in listed:
        raise StepFailed(
            f"the key {held.replaces} that {name} replaced last time is still live at dYdX: "
            "it is retired first, once its overlap has passed"
        )
    intent, creds = journaled_create(
        ctx, name, path, listed, label="rotate_api_key", replaces=params.replaces
    )
    created_at = iso(time.time())
    try:
        ctx.conn.vault.set_owned_metadata(
            path,
            {
                META_KEY_ID: creds.key,
                META_KEY_CREATED: created_at or "",
                META_REPLACES: params.replaces,
            },
            account=ctx.spec.name,
        )
        failpoint("after_metadata:rotate_api_key")
        version = _write(ctx, path, _api_record(ctx, creds), label="rotated_api_key")
    except Exception as exc:  # noqa: BLE001 - whatever failed, no key may stay without its secret
        raise _unstored_key_deleted(ctx, intent, creds.key, exc) from None
    ctx.journal.forget(ctx.spec.name, intent.key)
    ctx.log(f"rotated API key {name}: {creds.key} stored at {path}, {params.replaces} still works")
    return Outcome(
        True,
        f"rotated API key {name}: created {creds.key} at dYdX, {_stored(path, version)}; "
        f"{params.replaces} still works",
    )


def retire_api_key(ctx: AccountContext, step: Step) -> Outcome:
    """Delete at dYdX the key a rotation replaced, once the overlap has passed. Only the id the
    destination's own rotation record names as replaced, and only while the destination holds
    another, complete key: never the stored key, never the default key."""
    params = step.params_as(RetireApiKeyParams)
    stored = ctx.conn.vault.read(params.path)
    held = StoredKey.of(stored.entry) if stored.entry.is_ours(ctx.spec.name) else None
    if (
        held is None
        or not stored.entry.fields >= API_FIELDS
        or held.replaces != params.key_id
        or held.key_id == params.key_id
    ):
        raise StepFailed(
            f"{params.path} does not record key {params.key_id} as replaced by the key it holds; "
            "not deleting it"
        )
    since = time.time() - held.created_at if held.created_at is not None else None
    if since is None or since < params.overlap:
        raise StepFailed(
            f"key {params.key_id} was replaced {format_duration(since or 0)} ago, within its "
            f"overlap of {format_duration(params.overlap)}; not deleting it yet"
        )
    default = ctx.default_key_id()
    if params.key_id == default:
        raise StepFailed(f"key {params.key_id} is the default API key, which is never deleted")
    if params.key_id not in ctx.conn.dydx.list_api_keys(ctx.spec.address, ctx.credentials()):
        ctx.log(f"the previous {params.name} key {params.key_id} is already gone at dYdX")
        return Outcome(False, f"the previous {params.name} key {params.key_id} is already gone")
    failpoint("before_retire:api_key")
    ctx.conn.dydx.delete_api_key(ctx.signer, params.key_id, default_key=default)
    ctx.forget_credentials(params.key_id)
    ctx.log(f"retired the previous {params.name} key {params.key_id} (replaced by {held.key_id})")
    return Outcome(
        True,
        f"deleted the previous {params.name} key {params.key_id} at dYdX "
        f"(replaced by {held.key_id} {format_duration(since)} ago)",
    )


RUNNERS: dict[StepKind, Callable[[AccountContext, Step], Outcome]] = {
    StepKind.ROTATE_API_KEY: rotate_api_key,
    StepKind.RETIRE_API_KEY: retire_api_key,
}
