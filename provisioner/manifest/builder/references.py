"""Secret references (``vault:``, ``env:``, ``file:``) and ``{name}`` templates; never read here."""

from __future__ import annotations

from typing import Any

from provisioner.manifest import paths
from provisioner.manifest.builder.reader import Reader
from provisioner.manifest.model import SecretRef
from provisioner.manifest.positions import NodePath, format_path


def secret_ref(
    r: Reader, raw: dict[str, Any], path: NodePath, account: str | None
) -> SecretRef | None:
    """A reference, templates expanded. ``account`` is None outside accounts."""
    if len(raw) != 1 or not r.ok(path):
        return None
    kind, target = next(iter(raw.items()))
    if not isinstance(target, str):
        return None
    where = (*path, kind)
    location = r.findings.doc.locate(where)
    target = expand(r, target, where, account)
    if target is None:
        return None
    if kind == "vault":
        parts = paths.split_vault_ref(target)
        if parts is None:
            r.report(
                where, f"{format_path(where)} is not a valid 'path#field'", paths.PATH_EXPECTED
            )
            return None
        return SecretRef("vault", parts[0], parts[1], location=location)
    if kind == "env":
        if not paths.ENV_NAME.fullmatch(target):
            r.report(
                where,
                f"{format_path(where)} names '{target}', which is not a valid variable name",
                "letters, digits and '_' (use {NAME} for the account name in upper case)",
            )
            return None
        return SecretRef("env", target, location=location)
    if kind == "file":
        return SecretRef("file", r.local_path(target), location=location)
    return None


def expand(r: Reader, template: str, path: NodePath, account: str | None) -> str | None:
    if not paths.has_placeholder(template):
        return template
    if account is None:
        r.report(
            path,
            f"{format_path(path)} uses {{name}}, which only means something in an account or in defaults",
            "a literal value",
        )
        return None
    return paths.expand(template, account)
