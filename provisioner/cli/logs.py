"""Library log records and Python warnings, printed through the run's redactor.

hvac, urllib3, web3 and the rest log through :mod:`logging`, and Python prints
warnings on stderr; either may quote a URL, a header or a value. While a command
runs, both go through one stderr handler that masks every registered secret.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from provisioner.redact import Redactor


class RedactingFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self._redactor.redact(super().format(record))


@contextmanager
def redacted_logging(redactor: Redactor, verbose: int) -> Iterator[None]:
    """Route log records (warnings and up; everything with -vv) and warnings to stderr, redacted."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(redactor))
    level = logging.DEBUG if verbose >= 2 else logging.WARNING
    handler.setLevel(level)
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(min(previous_level, level) if previous_level else level)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(previous_level)
