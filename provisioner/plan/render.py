"""Plan renderers: Terraform-like text, stable JSON (provisioner/schemas/plan.schema.json) and markdown for PR comments."""

from __future__ import annotations

from provisioner.plan.model import Plan, Summary

NOT_CHECKED = "Not checked by this untrusted plan (apply and the drift check do)"


def summary_line(s: Summary) -> str:
    destroy = f"{s.destroy} to destroy, " if s.destroy else ""
    pending = f", {s.pending} pending" if s.pending else ""
    return f"Plan: {s.add} to add, {s.change} to change, {destroy}{s.blocked} blocked{pending}."


def render_text(plan: Plan, *, color: bool = False) -> str:
    colors = {"+": "green", "~": "yellow", "-": "red", "!": "red"} if color else {}

    def paint(symbol: str, text: str) -> str:
        c = colors.get(symbol)
        return f"[{c}]{text}[/{c}]" if c else text

    lines = [f"Network {plan.network} (chain {plan.chain_id}), manifest {plan.manifest}", ""]
    for acc in plan.accounts:
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


def render_markdown(plan: Plan) -> str:
    s = plan.summary()
    out = [f"### dydx-provisioner plan: `{plan.manifest}` on {plan.network}", ""]
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


def render_json(plan: Plan) -> str:
    return plan.to_json()
