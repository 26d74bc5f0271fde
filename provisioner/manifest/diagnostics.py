"""Manifest errors: every problem found, each with its position, rendered like a compiler."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from provisioner.errors import ProvisionerError
from provisioner.manifest.model import Location

# A safety net: nothing shaped like a 32-byte hex secret ever reaches a message.
_SECRET_SHAPED = re.compile(r"(0x)?[0-9a-fA-F]{60,}")


def scrub(text: str) -> str:
    """Mask anything in a message that looks like a private key."""
    return _SECRET_SHAPED.sub("<hidden>", text)


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a manifest: where, what is wrong, what was expected."""

    location: Location
    message: str
    expected: str = ""

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.expected:
            text += f"; expected {self.expected}"
        return scrub(text)

    def sort_key(self) -> tuple[str, int, int]:
        return (self.location.file, self.location.line, self.location.column)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "message": scrub(self.message),
            "expected": scrub(self.expected),
            "text": str(self),
        }


class ManifestError(ProvisionerError):
    """The manifest is invalid. Carries every diagnostic found, in file order."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: Sequence[Diagnostic] = tuple(sorted(diagnostics, key=Diagnostic.sort_key))
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)

    def __str__(self) -> str:
        return self.render()
