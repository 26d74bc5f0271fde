"""The manifest's shape, from the packaged ``provisioner/schemas/manifest.schema.json``, and plain-language schema errors.

Messages echo a value only where it cannot be a secret, and a keyword's
``x-expected`` annotation in the schema says what a person should write.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from provisioner.manifest.inline_secrets import SECRET_KEYS
from provisioner.manifest.positions import NodePath, format_path

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}


def schema_text() -> str:
    """The schema file shipped inside the package (editors point at the same file in a checkout)."""
    return files("provisioner").joinpath("schemas", "manifest.schema.json").read_text("utf-8")


# Every pattern in the schema file ends with this alternative, so that editors accept a value
# such as ${VAULT_ADDR} before interpolation. The loader checks values after interpolation,
# so it drops the alternative: a ${ still present then is literal text ($${), never a variable.
INTERPOLATION_ALTERNATIVE = r"|.*\$\{[A-Za-z_][A-Za-z0-9_]*\}.*"


@cache
def _validator() -> Draft202012Validator:
    """The schema file is checked against the 2020-12 metaschema by its tests
    (tests/manifest/test_manifest_schema.py), not at every command's start."""
    schema = json.loads(schema_text())
    return Draft202012Validator(_inline_refs(schema, schema.get("$defs", {})))


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with local ``$ref``s replaced by their targets (it has no cycles), patterns strict.

    Resolving thousands of references per manifest dominates validation time;
    sibling keywords next to a ``$ref`` are annotations here, so a merge is exact.
    """
    if isinstance(node, list):
        return [_inline_refs(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    resolved = {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(resolved.get("pattern"), str):
        resolved["pattern"] = resolved["pattern"].replace(INTERPOLATION_ALTERNATIVE, "")
    ref = resolved.pop("$ref", None)
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**_inline_refs(defs[ref.removeprefix("#/$defs/")], defs), **resolved}
    if ref is not None:
        resolved["$ref"] = ref
    return resolved


@dataclass(frozen=True)
class SchemaProblem:
    path: NodePath
    message: str
    expected: str
    at_key: bool = False  # point at the key rather than the value (unknown keys)
    blocking: bool = True  # the value at ``path`` is not trustworthy for later checks


def schema_problems(data: object) -> list[SchemaProblem]:
    """Every way ``data`` departs from the schema, explained."""
    problems: list[SchemaProblem] = []
    seen_required: set[tuple[NodePath, int]] = set()
    for error in _validator().iter_errors(data):
        path: NodePath = tuple(error.absolute_path)
        if error.validator == "required":
            marker = (path, id(error.schema))
            if marker in seen_required:
                continue
            seen_required.add(marker)
        problems.extend(_explain(error, path))
    return problems


def _explain(error: ValidationError, path: NodePath) -> list[SchemaProblem]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    keyword = error.validator
    value: Any = error.instance
    where = format_path(path)
    expected = schema.get("x-expected", "")
    shown = _show(path, value)

    if keyword == "additionalProperties":
        return _unknown_keys(schema, value, path)
    if keyword == "required":
        missing = [k for k in error.validator_value if isinstance(value, dict) and k not in value]
        names = " and ".join(f"'{k}'" for k in missing)
        return [SchemaProblem(path, f"{where} is missing {names}", expected, blocking=False)]
    if keyword == "type":
        wanted = (
            error.validator_value
            if isinstance(error.validator_value, list)
            else [error.validator_value]
        )
        message = f"{where} is {_kind(value)}"
        if "string" in wanted and isinstance(value, bool | int | Decimal):
            message += " (YAML reads this unquoted value as a non-string; put it in quotes)"
        return [
            SchemaProblem(path, message, expected or " or ".join(_TYPE_NAMES[t] for t in wanted))
        ]
    if keyword == "enum":
        choices = [str(c) for c in error.validator_value]
        message = (
            f"{where} {shown} is not a known value" if shown else f"{where} is not a known value"
        )
        if isinstance(value, str) and (close := difflib.get_close_matches(value, choices, n=1)):
            message += f" (did you mean '{close[0]}'?)"
        return [SchemaProblem(path, message, expected or "one of: " + ", ".join(choices))]
    if keyword == "const":
        message = f"{where} {shown} is not supported" if shown else f"{where} is not supported"
        return [SchemaProblem(path, message, expected or f"{error.validator_value!r}")]
    if keyword == "pattern":
        message = f"{where} {shown} is not valid" if shown else f"{where} is not valid"
        return [SchemaProblem(path, message, expected or f"text matching {error.validator_value}")]
    if keyword in ("minLength", "minItems", "minProperties"):
        return [SchemaProblem(path, f"{where} is empty", expected)]
    if keyword == "maxLength":
        return [
            SchemaProblem(
                path, f"{where} is longer than {error.validator_value} characters", expected
            )
        ]
    if keyword == "maxProperties" and isinstance(value, dict):
        keys = ", ".join(value)
        return [SchemaProblem(path, f"{where} has {len(value)} entries ({keys})", expected)]
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        message = f"{where} {shown} is out of range" if shown else f"{where} is out of range"
        return [SchemaProblem(path, message, expected)]
    if keyword is None:  # a `false` schema
        return [SchemaProblem(path, f"{where} is not allowed here", expected)]
    return [SchemaProblem(path, f"{where} does not satisfy the schema rule '{keyword}'", expected)]


def _unknown_keys(schema: dict[str, Any], value: Any, path: NodePath) -> list[SchemaProblem]:
    if not isinstance(value, dict):
        return []
    known = list(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    allowed = ", ".join(known) + (" (or x-* keys)" if "^x-" in patterns else "")
    problems = []
    for key in value:
        if key in known or any(re.search(p, key) for p in patterns):
            continue
        message = f"unknown key '{key}' in {format_path(path)}"
        if close := difflib.get_close_matches(key, known, n=1):
            message += f" (did you mean '{close[0]}'?)"
        problems.append(SchemaProblem((*path, key), message, f"one of: {allowed}", at_key=True))
    return problems


def _kind(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, Decimal):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# URLs often carry credentials (user:pass@, an RPC provider's key in the path): not echoed either.
_UNSHOWN = SECRET_KEYS | {"url", "api_url", "rpc_url"}


def _show(path: NodePath, value: object) -> str:
    """The value, quoted and shortened, or '' where it may be a secret."""
    if any(step in _UNSHOWN for step in path):
        return ""
    if isinstance(value, str):
        text = value if len(value) <= 48 else value[:45] + "..."
        return repr(text)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return ""
