"""Vault paths, ``path#field`` references, environment names, and the ``{name}`` templates of accounts."""

from __future__ import annotations

import os
import re
from pathlib import PurePath

_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_FIELD = re.compile(r"[A-Za-z0-9._-]+")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PLACEHOLDERS = ("{name}", "{NAME}")

PATH_EXPECTED = (
    "a path under the mount such as dydx/mm-alpha/stark (segments of letters, digits, "
    "'.', '_', '-' joined by '/', no leading or trailing '/', no '..')"
)


def has_placeholder(text: str) -> bool:
    return "{name" in text or "{NAME" in text


def expand(template: str, account: str) -> str:
    """``{name}`` -> ``mm-alpha``; ``{NAME}`` -> ``MM_ALPHA`` (for environment variable names)."""
    if "{" not in template:
        return template
    return template.replace("{name}", account).replace("{NAME}", account.upper().replace("-", "_"))


def is_vault_path(path: str) -> bool:
    segments = path.split("/")
    return all(_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments)


def split_vault_ref(ref: str) -> tuple[str, str] | None:
    """``"dydx/a/stark#private_key"`` -> ``("dydx/a/stark", "private_key")``; None if malformed."""
    path, sep, field = ref.rpartition("#")
    if not sep or not is_vault_path(path) or not _FIELD.fullmatch(field):
        return None
    return path, field


def is_under(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


LOCAL_FILE_EXPECTED = (
    "a path relative to the manifest's directory that stays inside it, such as keys/alpha.key "
    "(no absolute path, no '..', no symlink leading out)"
)


def local_file_problem(base_dir: str, target: str) -> str | None:
    """Why ``target`` is not a file inside ``base_dir`` (a manifest's directory), or None.

    A manifest, maybe from a pull request nobody reviewed, must not make a run read a
    file elsewhere on the machine (a runner's credentials, another repository's keys).
    """
    if not target or os.path.isabs(target) or target.startswith("~"):
        return "is an absolute path"
    if ".." in PurePath(target).parts:
        return "leaves the manifest's directory ('..')"
    if not is_inside(os.path.join(base_dir, target), base_dir):
        return "leads out of the manifest's directory through a symlink"
    return None


def is_inside(path: str, base_dir: str) -> bool:
    """``path``, symlinks resolved, lies within ``base_dir`` (symlinks resolved too)."""
    base = os.path.realpath(base_dir)
    real = os.path.realpath(path)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)
