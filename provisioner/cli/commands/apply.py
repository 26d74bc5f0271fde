"""`provision apply [PLAN]`: parse the arguments, render the run's events (apply/run.py does the rest)."""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal, InvalidOperation

from provisioner.apply.guardrails import MAINNET_CHAIN_ID
from provisioner.apply.lease import DEFAULT_TTL_SECONDS, MIN_TTL_SECONDS
from provisioner.apply.run import ApplyRequest, run_apply, targets
from provisioner.apply.signals import Drain, Interrupted
from provisioner.cli.output.choose import reporter_for
from provisioner.cli.runtime import session_from_args
from provisioner.errors import ProvisionerError
from provisioner.manifest.model import Manifest
from provisioner.money import to_base_units
from provisioner.plan.model import Plan, PlanOptions
from provisioner.plan.saved import load_saved_plan, saved_options
from provisioner.session import parse_shard


def run(args: argparse.Namespace) -> int:
    ttl = DEFAULT_TTL_SECONDS if args.lock_ttl is None else args.lock_ttl
    if ttl < MIN_TTL_SECONDS:
        raise ProvisionerError(f"--lock-ttl {ttl}: expected at least {MIN_TTL_SECONDS} seconds")
    saved = load_saved_plan(args.plan_file) if args.plan_file else None
    options = PlanOptions(
        prune_api_keys=args.prune_api_keys,
        targets=tuple(args.target or ()),
        shard=args.shard,
        derive=args.derive,
    )
    if saved is not None:
        options = saved_options(saved, options, args.plan_file)
    max_deposit = _max_deposit(args.max_deposit)
    interactive = sys.stdin.isatty()
    args.shard = options.shard
    if args.json and saved is None and not args.auto_approve:
        raise ProvisionerError(
            "apply --json asks no question: pass --auto-approve, or apply a plan saved with 'plan --out'"
        )
    drain = Drain()
    with drain.installed(), reporter_for(args, operation="apply") as report:
        try:
            session = session_from_args(args, targets(saved, list(options.targets)), on_wait=report)
            request = ApplyRequest(
                options=options,
                saved=saved,
                saved_name=args.plan_file or "",
                auto_approve=args.auto_approve,
                interactive=interactive,
                max_deposit=max_deposit,
                confirm_mainnet=args.confirm_mainnet
                or typed_mainnet(session.manifest, interactive, max_deposit),
                force_unlock=args.force_unlock,
                shard=parse_shard(options.shard) if options.shard else None,
                lock_ttl=ttl,
            )
            return run_apply(session, request, report=report, approve=ask, drain=drain)
        except Interrupted as stop:
            return stopped(drain, stop)


def stopped(drain: Drain, stop: Interrupted) -> int:
    """A run SIGTERM/SIGINT drained (apply's, and rotate's, which is one): say so, exit."""
    print(
        f"Stopped on {drain.name} after {drain.since():.1f}s: {stop}; "
        "the leases are released, the next apply does the rest.",
        file=sys.stderr,
        flush=True,
    )
    if stop.abandoned:  # threads are still in their calls: exit now, not when they return
        sys.stdout.flush()
        os._exit(stop.exit_code)
    return stop.exit_code


def typed_mainnet(manifest: Manifest, interactive: bool, max_deposit: int | None) -> bool:
    """On a terminal, mainnet asks for its own confirmation, whatever else was given (a saved
    plan, --auto-approve); without a ceiling it is refused anyway, so nothing is asked."""
    capped = manifest.max_deposit is not None or max_deposit is not None
    if manifest.network.chain_id != MAINNET_CHAIN_ID or not interactive or not capped:
        return False
    answer = input("This applies on Ethereum mainnet, with real funds. Type 'mainnet' to go on: ")
    return answer.strip() == "mainnet"


def _max_deposit(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return to_base_units(Decimal(text))
    except (InvalidOperation, ValueError) as exc:
        raise ProvisionerError(
            f"--max-deposit {text!r}: expected a USDC amount with at most 6 decimals ({exc})"
        ) from None


def ask(_plan: Plan) -> bool:
    return input("Apply these steps? Only 'yes' is accepted: ").strip() == "yes"
