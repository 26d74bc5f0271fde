"""Run a command as its own process and measure it: wall time and peak resident memory."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Measured:
    rc: int
    seconds: float
    peak_rss_mb: float  # ru_maxrss of this process alone (os.wait4), not of its parent
    cpu_seconds: float  # its user + system CPU time: on a busy machine, how much it got
    stdout: str
    stderr: str


def run(argv: Sequence[str], env: Mapping[str, str]) -> Measured:
    """``argv`` with ``env``, stdin closed, output to files (no pipe to drain while timing).

    The child is reaped with ``os.wait4``, which reports the resources of that one process.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=dict(env), cwd=REPO
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Measured(
            rc=proc.returncode,
            seconds=seconds,
            peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
