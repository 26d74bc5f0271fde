"""tests/scale also checks the benchmark's own logic: make the repository's ``benchmarks`` importable."""

import sys
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[2])
if REPO not in sys.path:
    sys.path.insert(0, REPO)
