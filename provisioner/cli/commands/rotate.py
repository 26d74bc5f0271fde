"""`provision rotate --account NAME --key KEY` (one key now) or `provision rotate --due` (what
the manifest's rotate_after and rotation_overlap make due, nothing else): through apply's own
path (plan shown, confirmation or --auto-approve, locks, journal, mainnet's confirmation);
apply/run.py does the work."""

from __future__ import annotations

import argparse
import sys

from provisioner.apply.events import Event, PlanReady
from provisioner.apply.run import ApplyRequest
from provisioner.cli.commands.apply import TextReporter, drained, typed_mainnet
from provisioner.cli.runtime import session_from_args
from provisioner.errors import ProvisionerError
from provisioner.plan.model import Plan, PlanOptions
from provisioner.plan.rotation import rotation_target
from provisioner.session import parse_shard

# A rotation deposits nothing: the run's ceiling is 0, so no deposit (not even a journaled
# one sent again, which is apply's to settle) goes out under `rotate`, and mainnet's rule
# that every apply has a ceiling holds without asking for one.
NO_DEPOSIT = 0


def run(args: argparse.Namespace) -> int:
    if args.due and (args.account or args.key) or not args.due and not (args.account and args.key):
        raise ProvisionerError("rotate: give --account NAME --key KEY, or --due")
    if args.due:
        session = session_from_args(args)
        options = PlanOptions(
            rotation_only=True, targets=tuple(args.target or ()), shard=args.shard
        )
    else:
        if args.target or args.shard:
            raise ProvisionerError("rotate --account --key: --target and --shard go with --due")
        session = session_from_args(args)
        target = rotation_target(session.manifest, args.account, args.key)
        session = session.only({args.account})
        options = PlanOptions(rotate=target)
    interactive = sys.stdin.isatty()
    request = ApplyRequest(
        options=options,
        auto_approve=args.auto_approve,
        interactive=interactive,
        max_deposit=NO_DEPOSIT,
        max_deposit_source="rotate (it deposits nothing)",
        confirm_mainnet=args.confirm_mainnet
        or typed_mainnet(session.manifest, interactive, NO_DEPOSIT),
        shard=parse_shard(args.shard) if args.shard else None,
    )
    text = TextReporter(session.redactor)
    seen: list[Plan] = []

    def report(event: Event) -> None:
        if isinstance(event, PlanReady):
            seen.append(event.plan)
        text(event)

    status = drained(session, request, report)
    blocked = [s for plan in seen[-1:] for s in plan.steps() if s.blocked]
    for step in blocked:
        print(session.redactor.redact(f"error: {step.summary}: {step.blocked}"), file=sys.stderr)
    return max(status, int(bool(blocked)))
