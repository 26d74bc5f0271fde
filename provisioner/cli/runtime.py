"""From parsed arguments to an open session: what plan, apply and status read the same way."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from provisioner.observe import DEFAULT_PARALLELISM
from provisioner.redact import Redactor
from provisioner.session import Session, open_session, parse_shard


def stderr_logger(verbose: int, redactor: Redactor) -> Callable[[str], None]:
    def log(message: str) -> None:
        if verbose:
            print(redactor.redact(message), file=sys.stderr, flush=True)

    return log


def session_from_args(args: argparse.Namespace, targets: list[str] | None = None) -> Session:
    """``targets``: instead of ``--target`` (apply with a saved plan picks its accounts)."""
    redactor = getattr(args, "redactor", None) or Redactor()  # main's: it redacts our errors too
    shard = getattr(args, "shard", None)
    parallelism = getattr(args, "parallelism", None) or int(
        os.environ.get("PROVISION_PARALLELISM", DEFAULT_PARALLELISM)
    )
    return open_session(
        args.file,
        targets=targets if targets is not None else list(getattr(args, "target", []) or []),
        shard=parse_shard(shard) if shard else None,
        parallelism=parallelism,
        redactor=redactor,
        log=stderr_logger(getattr(args, "verbose", 0), redactor),
    )
