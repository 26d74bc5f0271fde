"""`provision show PLAN`: a plan saved by `plan --out`, rendered offline (no manifest, no network)."""

from __future__ import annotations

import argparse

from provisioner.cli.commands.plan import write_plan
from provisioner.plan.saved import load_saved_plan
from provisioner.redact import Redactor


def run(args: argparse.Namespace) -> int:
    plan = load_saved_plan(args.plan_file)
    redactor: Redactor = getattr(args, "redactor", None) or Redactor()
    write_plan(args, plan, redactor, args.format)
    return 0
