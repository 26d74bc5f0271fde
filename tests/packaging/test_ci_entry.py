"""CI's entry point fails when pytest runs no test (pytest's own exit code for that is 5)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_run_that_collects_no_test_fails() -> None:
    result = subprocess.run(
        ["bash", "scripts/run-tests.sh", "-q", "tests/packaging/test_ci_entry.py", "-k", "no_such"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "error: pytest collected no tests" in result.stderr
