"""Which reporter a command gets: JSON when asked, the live display on a terminal that takes
control codes, plain lines everywhere else."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from provisioner.cli.output.jsonl import JsonReporter
from provisioner.cli.output.lines import Lines, rich_terminal
from provisioner.cli.output.live import LiveReporter
from provisioner.cli.output.plain import PlainReporter
from provisioner.errors import ProvisionerError
from provisioner.redact import Redactor

Chosen = JsonReporter | LiveReporter | PlainReporter


def lines_of(args: argparse.Namespace) -> Lines:
    """The command's one writer (main's, so that log lines share its lock)."""
    lines = getattr(args, "lines", None)
    if lines is None:
        lines = args.lines = Lines()
    return lines


@contextlib.contextmanager
def reporter_for(args: argparse.Namespace, *, operation: str) -> Iterator[Chosen]:
    redactor: Redactor = getattr(args, "redactor", None) or Redactor()
    lines = lines_of(args)
    compact = True if getattr(args, "compact", False) else None
    chosen: Chosen
    if getattr(args, "json", False):
        chosen = JsonReporter(redactor, lines, operation=operation)
    elif rich_terminal(sys.stderr):
        chosen = LiveReporter(redactor, lines, compact=compact, color=rich_terminal(sys.stdout))
    else:
        chosen = PlainReporter(redactor, lines, color=rich_terminal(sys.stdout), compact=compact)
    with chosen:
        try:
            yield chosen
        except ProvisionerError as exc:
            if isinstance(chosen, JsonReporter):
                chosen.diagnostic(str(exc))
            raise
