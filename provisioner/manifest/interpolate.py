"""``${VAR}`` in string values, read from the environment at load time; ``$${`` is a literal ``${``.

An untrusted manifest (``plan --untrusted-manifest``) may read only the variables it was
allowed (``allowed``); any other is refused without being read. Every value that is
substituted goes to ``on_value`` (the run's redactor), so no output ever shows it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from provisioner.manifest.positions import NodePath

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)(\})?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

ReportFn = Callable[[NodePath, str, str], None]
ValueFn = Callable[[str], None]


@dataclass
class Substitution:
    text: str
    missing: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # not among the allowed names: never read
    values: list[str] = field(default_factory=list)  # what was substituted


def substitute(
    text: str, env: Mapping[str, str], allowed: Collection[str] | None = None
) -> Substitution:
    """Replace every ``${NAME}``; names that are unset, malformed or not ``allowed`` (None: any
    name) are listed, not guessed, and a name that is not allowed is never looked up."""
    if "$" not in text:
        return Substitution(text)
    result = Substitution("")

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$${":
            return "${"
        name, closed = match.group(1), match.group(2)
        if not closed or not _NAME.fullmatch(name):
            result.malformed.append(whole)
            return whole
        if allowed is not None and name not in allowed:
            result.refused.append(name)
            return whole
        if name not in env:
            result.missing.append(name)
            return whole
        result.values.append(env[name])
        return env[name]

    result.text = _REFERENCE.sub(replace, text)
    return result


def interpolate_tree(
    data: object,
    env: Mapping[str, str],
    report: ReportFn,
    *,
    allowed: Collection[str] | None = None,
    on_value: ValueFn | None = None,
) -> object:
    """A copy of ``data`` with every string value interpolated; problems go to ``report``,
    substituted values to ``on_value``."""
    return _Walk(env, report, allowed, on_value or (lambda _v: None)).walk(data, ())


@dataclass
class _Walk:
    env: Mapping[str, str]
    report: ReportFn
    allowed: Collection[str] | None
    on_value: ValueFn

    def walk(self, value: object, path: NodePath) -> object:
        if isinstance(value, str):
            return self.string(value, path) if "$" in value else value
        if isinstance(value, dict):
            return {k: self.walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    def string(self, value: str, path: NodePath) -> str:
        report = self.report
        sub = substitute(value, self.env, self.allowed)
        for found in sub.values:
            self.on_value(found)
        for name in dict.fromkeys(sub.refused):
            report(
                path,
                f"environment variable {name} is not allowed in an untrusted manifest (not read)",
                f"--allow-env {name} on the command line, or a value written in the manifest",
            )
        for name in dict.fromkeys(sub.missing):
            report(
                path,
                f"environment variable {name} is not set",
                f"{name} in the environment (or '$${{' for a literal '${{')",
            )
        if sub.malformed:  # not echoed: the text around it may be anything
            report(
                path,
                "malformed variable reference: '${' without a valid NAME and a closing '}'",
                "${NAME} with NAME made of letters, digits and '_' (defaults like ${NAME:-x} are not supported)",
            )
        return sub.text
