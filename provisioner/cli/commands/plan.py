"""`provision plan`: show the missing onboarding steps; optionally save them for `apply PLAN`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from provisioner.cli.runtime import session_from_args
from provisioner.plan.model import PlanOptions
from provisioner.plan.render import render_json, render_markdown, render_text
from provisioner.session import look


def run(args: argparse.Namespace) -> int:
    r = session_from_args(args)
    options = PlanOptions(
        prune_api_keys=getattr(args, "prune_api_keys", False),
        targets=tuple(args.target or ()),
        shard=args.shard,
        derive=getattr(args, "derive", False),
    )
    _, plan = look(r, options)
    if args.out:
        Path(args.out).write_text(r.redactor.redact(plan.to_json()))
    if args.format == "json":
        sys.stdout.write(r.redactor.redact(render_json(plan)))
    elif args.format == "markdown":
        sys.stdout.write(r.redactor.redact(render_markdown(plan)))
    else:
        print_text(r.redactor.redact(render_text(plan, color=_color())))
    if args.out:
        print(
            f"Saved the plan to {args.out}; apply it with: provision apply -f {args.file} {args.out}",
            file=sys.stderr,
        )
    if args.detailed_exitcode and plan.summary().has_changes:
        return 2
    return 0


def _color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def print_text(text: str) -> None:
    if _color():
        Console(highlight=False).print(text, end="")
    else:
        sys.stdout.write(text)
