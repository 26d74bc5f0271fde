"""What every part of the builder shares: trusted values with their paths, and reporting."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from provisioner.manifest.addresses import AddressProblem, checksummed
from provisioner.manifest.amounts import EXPECTED as AMOUNT_EXPECTED
from provisioner.manifest.amounts import AmountProblem, parse_amount
from provisioner.manifest.findings import Findings
from provisioner.manifest.positions import NodePath, format_path


@dataclass(frozen=True)
class Sourced:
    """A value and the path it was written at (in the account, or in defaults)."""

    value: Any
    path: NodePath


class Reader:
    """Reads checked data, skipping what an earlier phase found bad, and reports to ``findings``."""

    def __init__(self, findings: Findings, env: Mapping[str, str], base_dir: str) -> None:
        self.findings = findings
        self.env = env
        self.base_dir = base_dir

    def report(self, path: NodePath, message: str, expected: str, **kw: Any) -> None:
        self.findings.report(path, message, expected, **kw)

    def ok(self, path: NodePath) -> bool:
        return self.findings.trusted(path)

    def line(self, path: NodePath) -> int:
        return self.findings.doc.locate(path).line

    def get(self, obj: object, key: str, path: NodePath) -> Sourced | None:
        """The trusted value at ``obj[key]``, or None when absent or already reported."""
        if not isinstance(obj, dict) or key not in obj:
            return None
        child = (*path, key)
        if not self.ok(child):
            return None
        return Sourced(obj[key], child)

    def get_container(self, obj: object, key: str, path: NodePath) -> dict[str, Any] | None:
        """A mapping value whose own shape may hold problems further down (checked per field)."""
        if not isinstance(obj, dict) or not isinstance(obj.get(key), dict):
            return None
        if self.findings.explained((*path, key)):
            return None
        value: dict[str, Any] = obj[key]
        return value

    def local_path(self, target: str) -> str:
        """A file path as written in the manifest, relative to the manifest's directory."""
        return os.path.normpath(os.path.join(self.base_dir, target))

    def amount(self, raw: Sourced) -> Decimal | None:
        try:
            return parse_amount(raw.value)
        except AmountProblem as problem:
            self.report(raw.path, f"{format_path(raw.path)} {problem}", AMOUNT_EXPECTED)
            return None

    def address(self, raw: Sourced) -> str | None:
        if not isinstance(raw.value, str):
            return None
        try:
            return checksummed(raw.value)
        except AddressProblem as problem:
            self.report(
                raw.path,
                f"{format_path(raw.path)} {problem}",
                "the address exactly as the wallet shows it, or written all in lower case",
            )
            return None
