"""A plan saved by ``plan --out``, read back for ``apply PLAN``, and held to what planning
again gives: the same facts, options, steps and parameters, or it is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from provisioner.errors import ProvisionerError
from provisioner.plan.model import Plan, PlanOptions, Step
from provisioner.plan.params import to_wire


class SavedPlanError(ProvisionerError):
    pass


def load_saved_plan(path: str) -> Plan:
    try:
        return Plan.from_dict(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise SavedPlanError(f"{path}: no such plan file") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise SavedPlanError(
            f"{path}: not a plan saved by 'provision plan --out' ({exc})"
        ) from None


class PlanMismatch(SavedPlanError):
    """Planning again does not give the saved plan: it was edited, or made with other options."""


class StalePlan(SavedPlanError):
    """The facts changed since the plan was saved."""


CLOCK_SKEW_SECONDS = 300.0


def check_saved_time(name: str, saved: Plan, now: float) -> None:
    """``apply PLAN`` plans again as of the time the plan was made (a rotation's age is part
    of its step). A time ahead of this host's clock would make rotations due early and
    overlaps pass: refused, beyond a few minutes of clock skew."""
    at = saved.observed_at
    if at is not None and at > now + CLOCK_SKEW_SECONDS:
        made = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
        raise PlanMismatch(
            f"{name} says it was made at {made}, {at - now:.0f}s in the future of this host's clock "
            "(an edited file, or a wrong clock where it was made); nothing was done: plan again"
        )


def saved_options(saved: Plan, asked: PlanOptions, name: str) -> PlanOptions:
    """The options to apply ``saved`` with: its own. A command line that asks for other ones
    is refused (what was reviewed is what runs); what it leaves out is taken from the plan,
    but for ``--derive``: it asks remote signers for signatures while looking again, before
    the plan can be compared, so a plan file alone never turns it on."""
    if saved.options.derive and not asked.derive:
        raise PlanMismatch(
            f"{name} was planned with --derive, which asks remote signers for signatures: pass "
            "--derive to apply it; nothing was done"
        )
    given = PlanOptions(
        prune_api_keys=asked.prune_api_keys or saved.options.prune_api_keys,
        targets=asked.targets or saved.options.targets,
        shard=asked.shard or saved.options.shard,
        derive=asked.derive,
    )
    differs = given.differences(saved.options)
    if differs:
        flag = differs[0]
        raise PlanMismatch(
            f"{name} was planned with other options than this apply: {flag} "
            f"(the plan: {_shown(saved.options, flag)}; now: {_shown(given, flag)}); "
            "nothing was done: plan again with the options to apply, or apply without them"
        )
    return saved.options


def _shown(options: PlanOptions, flag: str) -> str:
    if flag in ("--prune-api-keys", "--derive"):
        on = options.prune_api_keys if flag == "--prune-api-keys" else options.derive
        return "with it" if on else "without it"
    if flag == "--target":
        return ", ".join(options.targets) or "every account"
    if flag == "rotate --account --key":
        return "/".join(options.rotate) if options.rotate else "no key"
    if flag == "rotate --due":
        return "with it" if options.rotation_only else "without it"
    return options.shard or "no shard"


def check_saved(name: str, saved: Plan, fresh: Plan) -> None:
    """A saved plan is applied only if planning again now gives exactly its steps, parameters
    and options; else refused, naming the first difference. Nothing of the file is executed:
    the run executes (and prints) ``fresh``, equal to it."""
    if saved.fingerprint != fresh.fingerprint or saved.chain_id != fresh.chain_id:
        raise StalePlan(
            f"{name} is stale: the live state changed since it was planned "
            f"(facts {saved.fingerprint[:19]} then, {fresh.fingerprint[:19]} now); run 'provision plan --out' again"
        )
    difference = first_difference(saved, fresh)
    if difference:
        raise PlanMismatch(
            f"{name} is not what planning again gives now: {difference}; nothing was done "
            "(was the file edited?): run 'provision plan --out' again and review it"
        )


def first_difference(saved: Plan, fresh: Plan) -> str | None:
    """The first thing in which ``saved`` and ``fresh`` differ (notes and times aside)."""
    if saved.options != fresh.options:
        return f"options {saved.options} in the plan, {fresh.options} now"
    if saved.manifest != fresh.manifest or saved.network != fresh.network:
        return f"manifest {saved.manifest} on {saved.network} in the plan, {fresh.manifest} on {fresh.network} now"
    names = ([a.name for a in saved.accounts], [a.name for a in fresh.accounts])
    if names[0] != names[1]:
        return f"accounts {', '.join(names[0])} in the plan, {', '.join(names[1])} now"
    for old_acc, new_acc in zip(saved.accounts, fresh.accounts, strict=True):
        if old_acc.address != new_acc.address:
            return f"{old_acc.name}: address {old_acc.address} in the plan, {new_acc.address} now"
        old_ids, new_ids = [s.id for s in old_acc.steps], [s.id for s in new_acc.steps]
        if old_ids != new_ids:
            return f"{old_acc.name}: steps {', '.join(old_ids) or 'none'} in the plan, {', '.join(new_ids) or 'none'} now"
        for old, new in zip(old_acc.steps, new_acc.steps, strict=True):
            found = _step_difference(old, new)
            if found:
                return f"step {old.id}: {found}"
    return None


def _step_difference(old: Step, new: Step) -> str | None:
    old_params, new_params = to_wire(old.params), to_wire(new.params)
    for name in [*old_params, *(k for k in new_params if k not in old_params)]:
        if old_params.get(name) != new_params.get(name):
            return f"{name} is {old_params.get(name)} in the plan, {new_params.get(name)} now"
    for name in ("kind", "action", "summary", "reason", "depends_on", "blocked"):
        if getattr(old, name) != getattr(new, name):
            return f"{name} is {getattr(old, name)!r} in the plan, {getattr(new, name)!r} now"
    return None
