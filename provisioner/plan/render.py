"""Plan renderers: Terraform-like text, stable JSON (provisioner/schemas/plan.schema.json) and markdown for PR comments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from provisioner.money import format_usdc, from_base_units
from provisioner.plan.model import AccountPlan, Action, Plan, Step, StepKind, Summary
from provisioner.plan.params import (
    ApiKeyParams,
    ApproveParams,
    DepositParams,
    RetireApiKeyParams,
    RotateApiKeyParams,
)

COMPACT_FROM = 50
"""Accounts in a plan from which its text groups accounts that need the same steps."""

NOT_CHECKED = "Not checked by this untrusted plan (apply and the drift check do)"


def summary_line(s: Summary) -> str:
    destroy = f"{s.destroy} to destroy, " if s.destroy else ""
    pending = f", {s.pending} pending" if s.pending else ""
    return f"Plan: {s.add} to add, {s.change} to change, {destroy}{s.blocked} blocked{pending}."


def render_text(plan: Plan, *, color: bool = False, compact: bool | None = None) -> str:
    """``compact``: group accounts whose steps are the same (None: when the plan has more than
    ``COMPACT_FROM`` accounts); accounts with anything else to say are listed in full."""
    colors = {"+": "green", "~": "yellow", "-": "red", "!": "red"} if color else {}

    def paint(symbol: str, text: str) -> str:
        c = colors.get(symbol)
        return f"[{c}]{text}[/{c}]" if c else text

    if compact is None:
        compact = len(plan.accounts) > COMPACT_FROM
    lines = [f"Network {plan.network} (chain {plan.chain_id}), manifest {plan.manifest}", ""]
    groups = _groups(plan.accounts) if compact else {}
    shown: set[tuple[str, ...]] = set()
    for acc in plan.accounts:
        key = _sequence(acc)
        members = groups.get(key) if key is not None else None
        if key is not None and members is not None and len(members) > 1:
            if key not in shown:
                shown.add(key)
                lines += _group_lines(key, members, paint)
            continue
        if acc.converged and not acc.notes:
            lines.append(f"  {acc.name} ({acc.address}): up to date")
            continue
        lines.append(f"  {acc.name} ({acc.address}){'' if acc.steps else ': up to date'}")
        for step in acc.steps:
            lines.append(paint(step.symbol, f"    {step.symbol} {step.summary}"))
            lines.append(f"        why: {step.reason}")
            if step.blocked:
                lines.append(paint("!", f"        blocked: {step.blocked}"))
        for note in acc.notes:
            lines.append(f"    # {note.level}: {note.message}")
    lines.append("")
    if plan.not_checked:
        lines.append(f"{NOT_CHECKED}:")
        lines += [f"  - {item}" for item in plan.not_checked]
        lines.append("")
    s = plan.summary()
    lines.append(
        summary_line(s) if s.has_changes else "No changes. Every account matches the manifest."
    )
    return "\n".join(lines) + "\n"


def _groups(accounts: Sequence[AccountPlan]) -> dict[tuple[str, ...], list[AccountPlan]]:
    groups: dict[tuple[str, ...], list[AccountPlan]] = {}
    for acc in accounts:
        key = _sequence(acc)
        if key is not None:
            groups.setdefault(key, []).append(acc)
    return groups


def _sequence(acc: AccountPlan) -> tuple[str, ...] | None:
    """What the account's steps do, in words that name no account; None for an account that must
    be shown in full (a blocked step, a note, a step that only makes sense with its details)."""
    if acc.notes or any(s.blocked for s in acc.steps):
        return None
    words = tuple(_short(s) for s in acc.steps)
    return None if any(w is None for w in words) else tuple(w for w in words if w)


def _short(step: Step) -> str | None:
    p = step.params
    if step.kind is StepKind.STARK_KEY:
        return "derive the STARK key" if step.action is Action.CREATE else "complete the STARK key"
    if isinstance(p, ApproveParams):
        return (
            "approve unlimited USDC"
            if p.unlimited
            else f"approve {_usdc(p.amount_base_units)} USDC"
        )
    if isinstance(p, DepositParams):
        return f"deposit {_usdc(p.amount_base_units)} USDC"
    if step.kind is StepKind.API_KEY and isinstance(p, ApiKeyParams):
        return "default API key" if p.is_default else f"API key {p.name}"
    if step.kind is StepKind.REPLACE_API_KEY and isinstance(p, ApiKeyParams):
        return f"replace API key {p.name}"
    if isinstance(p, RotateApiKeyParams):  # the age and policy are in --format json
        return f"rotate API key {p.name}"
    if isinstance(p, RetireApiKeyParams):
        return f"retire the previous {p.name} key"
    return {
        StepKind.ONBOARD: "onboard",
        StepKind.RECORD_ACCOUNT: "record the account id",
        StepKind.REGISTER: "register",
    }.get(step.kind)


def _usdc(units: int) -> str:
    return format_usdc(Decimal(from_base_units(units)))


def _group_lines(
    words: tuple[str, ...], members: Sequence[AccountPlan], paint: Callable[[str, str], str]
) -> list[str]:
    names = [a.name for a in members]
    listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    if not words:
        return [f"  {len(names)} accounts up to date ({listed})"]
    symbol = "~" if all(s.action is Action.UPDATE for s in members[0].steps) else "+"
    head = f"  {len(names)} accounts: {', '.join(words)}"
    return [paint(symbol, head), f"        ({listed}; every step in --format json)"]


def render_markdown(plan: Plan) -> str:
    s = plan.summary()
    # the network's name is a free label of the manifest (a pull request's, unreviewed): a
    # code span on one line, so it can neither end the heading nor add markdown or HTML
    out = [f"### dydx-provisioner plan: {_code(plan.manifest)} on {_code(plan.network)}", ""]
    out.append(
        f"**{summary_line(s)}**"
        if s.has_changes
        else "**No changes.** Every account matches the manifest."
    )
    out.append("")
    changed = [a for a in plan.accounts if a.steps or a.notes]
    if changed:
        out += ["| account | step | why | status |", "| --- | --- | --- | --- |"]
        for acc in changed:
            for step in acc.steps:
                status = f"blocked: {step.blocked}" if step.blocked else "to do"
                out.append(
                    f"| `{acc.name}` | `{step.symbol}` {_md(step.summary)} | {_md(step.reason)} | {_md(status)} |"
                )
            for note in acc.notes:
                out.append(f"| `{acc.name}` | note ({note.level}) | {_md(note.message)} | |")
        out.append("")
    if plan.not_checked:
        out += [f"**{NOT_CHECKED}:**", ""]
        out += [f"- {_md(item)}" for item in plan.not_checked]
        out.append("")
    up_to_date = sum(1 for a in plan.accounts if a.converged)
    out.append(
        f"{up_to_date} of {len(plan.accounts)} account(s) up to date. Facts fingerprint `{plan.fingerprint[:19]}`."
    )
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """``text`` as an inline code span, shown as written: no backtick, no line break inside."""
    return "`" + " ".join(text.replace("`", "'").split()) + "`"


def render_json(plan: Plan) -> str:
    return plan.to_json()
