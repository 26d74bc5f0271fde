"""The problems found so far, where they are, and which values later checks can no longer trust."""

from __future__ import annotations

from provisioner.manifest.diagnostics import Diagnostic
from provisioner.manifest.model import Location
from provisioner.manifest.positions import NodePath, YamlDocument


class Findings:
    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []
        self._blocked: set[NodePath] = set()  # paths whose value is known bad
        self._touched: set[NodePath] = set()  # every prefix of a blocked path

    def report(
        self,
        path: NodePath,
        message: str,
        expected: str,
        *,
        at_key: bool = False,
        blocking: bool = True,
    ) -> None:
        location = self.doc.locate_key(path) if at_key else self.doc.locate(path)
        self.diagnostics.append(Diagnostic(location, message, expected))
        if blocking:
            self._block(path)

    def _block(self, path: NodePath) -> None:
        self._blocked.add(path)
        self._touched.update(path[:i] for i in range(len(path) + 1))

    def report_at(
        self, location: Location, message: str, expected: str, *, blocks: NodePath | None = None
    ) -> None:
        """A problem whose position is known but whose path may not locate it (e.g. a dropped key)."""
        self.diagnostics.append(Diagnostic(location, message, expected))
        if blocks is not None:
            self._block(blocks)

    def explained(self, path: NodePath) -> bool:
        """An earlier problem already covers ``path`` (at it or at an ancestor): don't pile on."""
        if not self._blocked:
            return False
        return any(path[:i] in self._blocked for i in range(len(path) + 1))

    def trusted(self, path: NodePath) -> bool:
        """No known problem at ``path``, inside it, or at an ancestor."""
        if not self._blocked:
            return True
        return path not in self._touched and not self.explained(path)

    def __bool__(self) -> bool:
        return bool(self.diagnostics)
