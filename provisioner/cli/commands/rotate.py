"""`provision rotate --account NAME --key KEY` (one key now) or `provision rotate --due` (what
the manifest's rotate_after and rotation_overlap make due, nothing else): through apply's own
path (plan shown, confirmation or --auto-approve, locks, journal, mainnet's confirmation) and
its reporters (text, live, or --json events); apply/run.py does the work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from provisioner.apply.events import Event, PlanReady
from provisioner.apply.run import ApplyRequest, run_apply
from provisioner.apply.signals import Drain, Interrupted
from provisioner.cli.commands.apply import ask, stopped, typed_mainnet
from provisioner.cli.output.choose import lines_of, reporter_for
from provisioner.cli.runtime import session_from_args
from provisioner.errors import ProvisionerError
from provisioner.plan.model import Plan, PlanOptions
from provisioner.plan.rotation import rotation_target
from provisioner.session import Session, parse_shard
from provisioner.waits import Wait

# A rotation deposits nothing: the run's ceiling is 0, so no deposit (not even a journaled
# one sent again, which is apply's to settle) goes out under `rotate`, and mainnet's rule
# that every apply has a ceiling holds without asking for one.
NO_DEPOSIT = 0


def run(args: argparse.Namespace) -> int:
    if args.due and (args.account or args.key) or not args.due and not (args.account and args.key):
        raise ProvisionerError("rotate: give --account NAME --key KEY, or --due")
    if not args.due and (args.target or args.shard):
        raise ProvisionerError("rotate --account --key: --target and --shard go with --due")
    if args.json and not args.auto_approve:
        raise ProvisionerError("rotate --json asks no question: pass --auto-approve")
    interactive = sys.stdin.isatty()
    seen: list[Plan] = []
    drain = Drain()
    with drain.installed(), reporter_for(args, operation="apply") as chosen:

        def report(event: Event | Wait) -> None:
            if isinstance(event, PlanReady):
                seen.append(event.plan)
            chosen(event)

        try:
            session, options = _selected(args, report)
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
            status = run_apply(session, request, report=report, approve=ask, drain=drain)
        except Interrupted as stop:
            return stopped(drain, stop)
    # a rotation asked for but blocked (the key not created yet, its predecessor still in
    # its overlap, no signer) is not done: say why, and exit 1
    blocked = [s for plan in seen[-1:] for s in plan.steps() if s.blocked]
    for step in blocked:
        lines_of(args).err(session.redactor.redact(f"error: {step.summary}: {step.blocked}"))
    return max(status, int(bool(blocked)))


def _selected(
    args: argparse.Namespace, report: Callable[[Wait], None]
) -> tuple[Session, PlanOptions]:
    """The session and plan options: every due rotation of the selected accounts (``--due``),
    or the one key asked for, checked against the manifest first."""
    session = session_from_args(args, on_wait=report)
    if args.due:
        return session, PlanOptions(
            rotation_only=True, targets=tuple(args.target or ()), shard=args.shard
        )
    target = rotation_target(session.manifest, args.account, args.key)
    return session.only({args.account}), PlanOptions(rotate=target)
