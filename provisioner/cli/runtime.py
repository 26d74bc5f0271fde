"""What plan, apply and status share: load the manifest, pick accounts, connect, observe, plan."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from provisioner.cli.trust import load_policy
from provisioner.connections import Connections, connect
from provisioner.errors import ProvisionerError
from provisioner.facts import WorldFacts
from provisioner.manifest.loader import load_manifest
from provisioner.manifest.model import AccountSpec, Manifest
from provisioner.observe import DEFAULT_PARALLELISM, observe
from provisioner.plan.model import Plan
from provisioner.plan.planner import PlanOptions, make_plan
from provisioner.redact import Redactor


@dataclass
class Run:
    manifest: Manifest
    accounts: list[AccountSpec]
    conn: Connections
    redactor: Redactor
    parallelism: int

    def observe(self, known: WorldFacts | None = None) -> WorldFacts:
        return observe(self.conn, self.accounts, parallelism=self.parallelism, known=known)

    def plan(self, options: PlanOptions) -> Plan:
        return self.observe_and_plan(options)[1]

    def observe_and_plan(
        self, options: PlanOptions, known: WorldFacts | None = None
    ) -> tuple[WorldFacts, Plan]:
        """``known``: facts of an earlier look in this run (see ``observe``)."""
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        facts = self.observe(known)
        return facts, make_plan(self.manifest, facts, options, created_at=created)


def at_exit(args: argparse.Namespace, close: Callable[[], None]) -> None:
    """Run ``close`` when the command ends, however it ends (main's ``args.cleanup``)."""
    cleanup = getattr(args, "cleanup", None)
    if cleanup is not None:
        cleanup.callback(close)


def stderr_logger(verbose: int, redactor: Redactor) -> Callable[[str], None]:
    def log(message: str) -> None:
        if verbose:
            print(redactor.redact(message), file=sys.stderr, flush=True)

    return log


def select_accounts(manifest: Manifest, targets: list[str], shard: str | None) -> list[AccountSpec]:
    accounts = list(manifest.accounts)
    if targets:
        known = {a.name for a in accounts}
        unknown = [t for t in targets if t not in known]
        if unknown:
            raise ProvisionerError(
                f"--target {', '.join(unknown)}: no such account in {manifest.path}"
            )
        accounts = [a for a in accounts if a.name in targets]
    if shard:
        index, count = parse_shard(shard)
        accounts = [a for a in accounts if shard_of(a.name, count) == index]
    return accounts


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ProvisionerError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ProvisionerError(f"--shard {text!r}: expected 0 <= I < N")
    return i, n


def shard_of(name: str, count: int) -> int:
    """Stable across runs and machines: a hash of the account name, not its position in the file."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count


def start_run(args: argparse.Namespace) -> Run:
    redactor = getattr(args, "redactor", None) or Redactor()  # main's: it redacts our errors too
    policy = load_policy(args)
    manifest = load_manifest(args.file, policy=policy, on_value=redactor.register_interpolated)
    accounts = select_accounts(
        manifest, list(getattr(args, "target", []) or []), getattr(args, "shard", None)
    )
    parallelism = getattr(args, "parallelism", None) or int(
        os.environ.get("PROVISION_PARALLELISM", DEFAULT_PARALLELISM)
    )
    conn = connect(
        manifest,
        redactor=redactor,
        log=stderr_logger(getattr(args, "verbose", 0), redactor),
        untrusted=policy.is_untrusted,
        allowed_env=policy.allowed_env,
        revoke_vault_token=not getattr(args, "keep_vault_token", False),
    )
    at_exit(args, conn.close)
    return Run(
        manifest=manifest, accounts=accounts, conn=conn, redactor=redactor, parallelism=parallelism
    )
