"""A wheelhouse made from the distributions already installed here, so a fresh venv installs offline.

Each installed distribution a requirement set needs is zipped back into a wheel from the files
its RECORD lists inside site-packages. Console scripts are left out: pip writes them again from
``entry_points.txt``, and none of the dependencies ship other scripts.
"""

from __future__ import annotations

import re
import zipfile
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements: list[str], extras: set[str] | None = None) -> dict[str, Distribution]:
    """The installed distributions ``requirements`` need, transitively (markers evaluated)."""
    found: dict[str, Distribution] = {}
    pending = [(Requirement(r), extras or set()) for r in requirements]
    while pending:
        requirement, wanted = pending.pop()
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({"extra": extra}) for extra in (wanted or {""})
        ):
            continue
        key = _normalise(requirement.name)
        if key in found:
            continue
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:
            continue  # an optional backend that is not installed; pip will say if it was needed
        found[key] = dist
        pending.extend((Requirement(r), set(requirement.extras)) for r in dist.requires or [])
    return found


def repack(dist: Distribution, out_dir: Path) -> Path:
    """``dist`` as a wheel file in ``out_dir``, built from its installed files."""
    site = Path(str(dist.locate_file("")))
    wheel_meta = dist.read_text("WHEEL") or ""
    tags = [
        line.split(":", 1)[1].strip().split("-")
        for line in wheel_meta.splitlines()
        if line.startswith("Tag:")
    ]
    # the compressed tag set (py2.py3-none-any), so pip sees every tag the wheel was built for
    tag = "-".join(".".join(dict.fromkeys(t[i] for t in tags)) for i in range(3))
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    target = out_dir / f"{name}-{dist.version}-{tag}.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as whl:
        for entry in dist.files or []:
            relative = str(entry)
            if relative.startswith("..") or "__pycache__" in relative:
                continue
            source = site / relative
            if source.is_file():
                whl.write(source, relative)
    return target


def requires_dist(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of a built wheel's METADATA."""
    with zipfile.ZipFile(wheel) as whl:
        (name,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        text = whl.read(name).decode("utf-8")
    return [
        line.split(":", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("Requires-Dist:")
    ]


def wheelhouse(requirements: list[str], out_dir: Path, extras: set[str] | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    for dist in closure(requirements, extras).values():
        repack(dist, out_dir)
    return out_dir
