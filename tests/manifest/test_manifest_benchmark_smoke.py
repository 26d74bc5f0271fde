"""The benchmark's generated manifest stays valid (the benchmark itself is not a timed test)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from support.manifest import ENV, REPO

from provisioner.manifest.loader import load_manifest


def test_generated_manifest_is_valid(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_validate", REPO / "benchmarks" / "bench_validate.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    path = tmp_path / "provision.yaml"
    path.write_text(bench.generate(25), encoding="utf-8")
    manifest = load_manifest(path, ENV)
    assert len(manifest.accounts) == 25
    assert all(len(a.api_keys) == 2 for a in manifest.accounts)
