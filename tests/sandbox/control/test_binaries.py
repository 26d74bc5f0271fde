"""Where `sandbox up` looks for its binaries, and what it tells a user who has none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.sandbox import control
from provisioner.sandbox.processes import StartupError

REPO = Path(__file__).resolve().parents[3]


def test_the_npm_package_named_in_the_error_is_the_one_make_installs() -> None:
    pinned = json.loads((REPO / "package.json").read_text())["dependencies"]
    assert pinned[control.ANVIL_NPM_PACKAGE] == control.ANVIL_NPM_VERSION


def test_an_anvil_bin_that_is_not_executable_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = tmp_path / "anvil"
    text.write_text("not a program")
    monkeypatch.setenv("ANVIL_BIN", str(text))
    with pytest.raises(StartupError, match=r"ANVIL_BIN=.* is not an executable file"):
        control.anvil_binary()


def test_anvil_in_the_current_directory_node_modules_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = tmp_path / "node_modules" / control.ANVIL_NPM_PACKAGE / "bin" / "anvil"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.delenv("ANVIL_BIN", raising=False)
    monkeypatch.setattr(control, "REPO_ROOT", tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path)
    assert control.anvil_binary() == str(binary)
