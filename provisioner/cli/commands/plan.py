"""`provision plan`: show the missing onboarding steps; optionally save them for `apply PLAN`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from provisioner.apply.events import PlanReady
from provisioner.cli.output.choose import lines_of, reporter_for
from provisioner.cli.output.lines import rich_terminal, styled
from provisioner.cli.runtime import session_from_args
from provisioner.plan.model import Plan, PlanOptions
from provisioner.plan.render import render_json, render_markdown, render_text
from provisioner.redact import Redactor
from provisioner.session import Session, look


def run(args: argparse.Namespace) -> int:
    if getattr(args, "json", False):
        with reporter_for(args, operation="plan") as report:
            r = session_from_args(args, on_wait=report)
            plan = _plan(args, r)
            report(PlanReady(plan))
    else:
        r = session_from_args(args)
        plan = _plan(args, r)
        write_plan(args, plan, r.redactor, args.format)
    if args.out:
        print(
            f"Saved the plan to {args.out}; apply it with: provision apply -f {args.file} {args.out}",
            file=sys.stderr,
        )
    if args.detailed_exitcode and plan.summary().has_changes:
        return 2
    return 0


def _plan(args: argparse.Namespace, r: Session) -> Plan:
    options = PlanOptions(
        prune_api_keys=getattr(args, "prune_api_keys", False),
        targets=tuple(args.target or ()),
        shard=args.shard,
        derive=getattr(args, "derive", False),
    )
    _, plan = look(r, options)
    if args.out:
        Path(args.out).write_text(r.redactor.redact(plan.to_json()))
    return plan


def write_plan(args: argparse.Namespace, plan: Plan, redactor: Redactor, fmt: str) -> None:
    """``plan`` on stdout as text, JSON or markdown (``show`` renders a saved one the same way)."""
    lines = lines_of(args)
    if fmt == "json":
        lines.out(redactor.redact(render_json(plan)))
    elif fmt == "markdown":
        lines.out(redactor.redact(render_markdown(plan)))
    else:
        color = rich_terminal(sys.stdout)
        compact = True if getattr(args, "compact", False) else None
        text = render_text(plan, color=color, compact=compact)
        lines.out(styled(redactor.redact(text), color=color))
