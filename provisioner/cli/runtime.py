"""From parsed arguments to an open session: what plan, apply and status read the same way."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from provisioner.cli.output.lines import Lines
from provisioner.cli.trust import load_policy
from provisioner.observe import DEFAULT_PARALLELISM
from provisioner.redact import Redactor
from provisioner.session import Session, open_session, parse_shard
from provisioner.waits import WaitHook, no_wait_hook


def stderr_logger(
    verbose: int, redactor: Redactor, lines: Lines | None = None
) -> Callable[[str], None]:
    writer = lines or Lines()

    def log(message: str) -> None:
        if verbose:
            writer.err(redactor.redact(message))

    return log


def session_from_args(
    args: argparse.Namespace,
    targets: list[str] | None = None,
    *,
    on_wait: WaitHook = no_wait_hook,
) -> Session:
    """``targets``: instead of ``--target`` (apply with a saved plan picks its accounts);
    ``on_wait``: told whenever a client waits (a reporter's)."""
    redactor = getattr(args, "redactor", None) or Redactor()  # main's: it redacts our errors too
    shard = getattr(args, "shard", None)
    parallelism = getattr(args, "parallelism", None) or int(
        os.environ.get("PROVISION_PARALLELISM", DEFAULT_PARALLELISM)
    )
    session = open_session(
        args.file,
        targets=targets if targets is not None else list(getattr(args, "target", []) or []),
        shard=parse_shard(shard) if shard else None,
        parallelism=parallelism,
        redactor=redactor,
        log=stderr_logger(getattr(args, "verbose", 0), redactor, getattr(args, "lines", None)),
        policy=load_policy(args),
        revoke_vault_token=not getattr(args, "keep_vault_token", False),
        on_wait=on_wait,
    )
    at_exit(args, session.conn.close)
    return session


def at_exit(args: argparse.Namespace, close: Callable[[], None]) -> None:
    """Run ``close`` when the command ends, however it ends (main's ``args.cleanup``)."""
    cleanup = getattr(args, "cleanup", None)
    if cleanup is not None:
        cleanup.callback(close)
