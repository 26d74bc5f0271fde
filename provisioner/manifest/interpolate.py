"""``${VAR}`` in string values, read from the environment at load time; ``$${`` is a literal ``${``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from provisioner.manifest.positions import NodePath

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)(\})?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

ReportFn = Callable[[NodePath, str, str], None]


@dataclass
class Substitution:
    text: str
    missing: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)


def substitute(text: str, env: Mapping[str, str]) -> Substitution:
    """Replace every ``${NAME}``; names that are unset or malformed are listed, not guessed."""
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
        if name not in env:
            result.missing.append(name)
            return whole
        return env[name]

    result.text = _REFERENCE.sub(replace, text)
    return result


def interpolate_tree(data: object, env: Mapping[str, str], report: ReportFn) -> object:
    """A copy of ``data`` with every string value interpolated; problems go to ``report``."""
    return _walk(data, (), env, report)


def _walk(value: object, path: NodePath, env: Mapping[str, str], report: ReportFn) -> object:
    if isinstance(value, str):
        if "$" not in value:
            return value
        sub = substitute(value, env)
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
    if isinstance(value, dict):
        return {k: _walk(v, (*path, k), env, report) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, (*path, i), env, report) for i, v in enumerate(value)]
    return value
