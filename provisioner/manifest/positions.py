"""YAML with positions: plain data for checking, and a way back from a path to a line and column.

Scalars are typed with care for money and hex: a YAML float becomes a
``Decimal`` read from its source text (never through a binary float), and
YAML 1.1 readings that surprise people stay text (``0x...`` hex, octal
``0755``, sexagesimal ``1:30``, timestamps), so addresses and asset ids need
no quotes and an amount is never silently re-based.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import yaml

from provisioner.manifest.diagnostics import Diagnostic, ManifestError
from provisioner.manifest.model import Location

NodePath = tuple[str | int, ...]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
_DECIMAL_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_TRUE = frozenset({"yes", "true", "on"})
_MAX_NODES = 1_000_000
_MAX_DEPTH = 64


class _TooLarge(Exception):
    pass


@dataclass
class YamlDocument:
    """A parsed manifest: its data and the YAML nodes that carry positions."""

    file: str
    root: yaml.Node | None
    data: object

    def locate(self, path: NodePath) -> Location:
        """Position of the value at ``path``, or of its nearest existing ancestor."""
        node, key = self._walk(path)
        if node is None:
            return Location(self.file, 1, 1)
        empty = isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null" and not node.value
        if empty and key is not None:
            node = key  # an empty value has no text of its own: point at its key
        return _location(self.file, node)

    def locate_key(self, path: NodePath) -> Location:
        """Position of the key that ends ``path`` (falls back to the value's position)."""
        node, key = self._walk(path)
        if key is not None:
            return _location(self.file, key)
        return self.locate(path)

    def _walk(self, path: NodePath) -> tuple[yaml.Node | None, yaml.Node | None]:
        node = self.root
        key: yaml.Node | None = None
        for step in path:
            if isinstance(node, yaml.MappingNode) and isinstance(step, str):
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == step:
                        node, key = v, k
                        break
                else:
                    return node, key
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                if not 0 <= step < len(node.value):
                    return node, key
                node, key = node.value[step], None
            else:
                return node, key
        return node, key


def _location(file: str, node: yaml.Node) -> Location:
    mark = node.start_mark
    return Location(file, mark.line + 1, mark.column + 1)


@dataclass(frozen=True)
class YamlProblem:
    """Valid YAML that the manifest does not accept; ``blocks`` is the path it leaves unusable."""

    diagnostic: Diagnostic
    blocks: NodePath | None


def parse_yaml(text: str, file: str) -> tuple[YamlDocument, list[YamlProblem]]:
    """Parse one YAML document. Syntax errors raise ``ManifestError``; other problems are returned."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise ManifestError([_syntax_diagnostic(exc, file)]) from None
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no mark on libyaml
        raise ManifestError(
            [Diagnostic(Location(file, 1, 1), f"not valid YAML: {exc}", "a YAML text file")]
        ) from None
    converter = _Converter(file)
    try:
        data = converter.convert(root, ()) if root is not None else None
    except _TooLarge as exc:
        raise ManifestError(
            [Diagnostic(Location(file, 1, 1), str(exc), "a plain manifest")]
        ) from None
    return YamlDocument(file, root, data), converter.problems


def decode(raw: bytes, file: str) -> str:
    """UTF-8 text of a manifest; an encoding error names the line and column of the bad byte."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise ManifestError(
            [
                Diagnostic(
                    Location(file, line, column),
                    "the file is not UTF-8 text",
                    "a UTF-8 encoded YAML file",
                )
            ]
        ) from None
    return text.removeprefix("\ufeff")


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, file: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
    problem = exc.problem or "syntax error"
    if exc.context:
        problem = f"{exc.context}, {problem}"
        if exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
            problem += f" (the construct starts at line {exc.context_mark.line + 1})"
    return Diagnostic(
        location,
        f"YAML syntax error: {problem}",
        "valid YAML (check the indentation; quote values that contain ': ', ' #', '{' or '}', "
        "or start with a special character)",
    )


class _Converter:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[YamlProblem] = []
        self.nodes = 0

    def _problem(
        self, node: yaml.Node, message: str, expected: str, blocks: NodePath | None
    ) -> None:
        diagnostic = Diagnostic(_location(self.file, node), message, expected)
        self.problems.append(YamlProblem(diagnostic, blocks))

    def convert(self, node: yaml.Node, path: NodePath) -> object:
        self.nodes += 1
        if self.nodes > _MAX_NODES or len(path) > _MAX_DEPTH:
            raise _TooLarge("the document is too large or too deeply nested (recursive aliases?)")
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _TAG + "seq":
                self._problem(node, f"YAML tag '{node.tag}' is not supported", "a plain list", path)
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            if node.tag != _TAG + "map":
                self._problem(
                    node, f"YAML tag '{node.tag}' is not supported", "a plain mapping", path
                )
            return self._mapping(node, path)
        raise AssertionError(f"unexpected YAML node {node!r}")

    def _mapping(self, node: yaml.MappingNode, path: NodePath) -> dict[str, object]:
        result: dict[str, object] = {}
        first_seen: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                self._problem(
                    key, "a mapping key must be plain text", "a key such as 'name:'", None
                )
                continue
            if key.tag == _TAG + "merge":
                self._problem(
                    key,
                    "YAML merge keys ('<<') are not supported",
                    "the 'defaults:' block, or an alias (*name) of a whole value",
                    path,  # the mapping is incomplete without what the merge would bring
                )
                continue
            name = key.value
            if name in first_seen:
                line = first_seen[name].start_mark.line + 1
                self._problem(
                    key,
                    f"duplicate key '{name}' (first given at line {line})",
                    "each key once per mapping",
                    None,
                )
                continue
            first_seen[name] = key
            result[name] = self.convert(value, (*path, name))
        return result

    def _scalar(self, node: yaml.ScalarNode, path: NodePath) -> object:
        tag, text = node.tag, node.value
        if tag == _TAG + "str":
            return text
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return text.lower() in _TRUE
        if tag == _TAG + "int":
            digits = text.replace("_", "")
            return int(digits) if _DECIMAL_INT.fullmatch(digits) else text
        if tag == _TAG + "float":
            try:
                number = Decimal(text.replace("_", ""))
            except InvalidOperation:
                return text  # .inf, .nan, 1:30.5: left as text, refused where a number is needed
            return number if number.is_finite() else text
        if tag == _TAG + "timestamp":
            return text
        self._problem(node, f"YAML tag '{tag}' is not supported", "a plain value", path)
        return text


def format_path(path: NodePath) -> str:
    """``accounts[2].signer.private_key``; the root is 'the manifest'."""
    if not path:
        return "the manifest"
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text
