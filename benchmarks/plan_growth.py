"""How `provision plan` time grows with the number of accounts, without the interpreter's start.

Run by benchmarks/run.py as its own process: ``python -m benchmarks.plan_growth M1 M2 ...``.
After one warm-up plan (imports, first connections), each manifest is planned ``--repeat``
times in this process through the CLI's own entry point; the median time of each is printed
as JSON ``{"<accounts>": seconds}``. Start-up costs the same at any size, so this is the
part that can grow: linear means a constant cost per account.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time

from benchmarks.measure import median
from provisioner.cli.main import main as provision
from provisioner.manifest.loader import load_manifest


def _plan(path: str) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = provision(["plan", "-f", path, "--detailed-exitcode"])
    if rc != 0:
        raise SystemExit(f"plan of {path} exited {rc}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifests", nargs="+")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    _plan(args.manifests[0])  # warm-up
    times = {
        str(len(load_manifest(path).accounts)): median([_plan(path) for _ in range(args.repeat)])
        for path in args.manifests
    }
    json.dump(times, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
