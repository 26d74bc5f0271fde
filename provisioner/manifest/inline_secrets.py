"""Secrets never sit in the manifest: only references to them. Findings never echo the value."""

from __future__ import annotations

import re
from dataclasses import dataclass

from provisioner.manifest.positions import NodePath, format_path

SECRET_KEYS = frozenset({"private_key", "password", "secret_id", "jwt", "token"})
REFERENCE_FORMS = 'a reference such as {vault: "path#field"}, {env: NAME} or {file: path}'

_KEY_SHAPED = re.compile(r"\s*(0[xX])?[0-9a-fA-F]{64}\s*")
_HEX_IDS = frozenset({"collateral_asset_id"})  # public 252-bit ids that look like keys


@dataclass(frozen=True)
class InlineSecret:
    path: NodePath
    at_key: bool
    message: str
    expected: str = REFERENCE_FORMS


def find_inline_secrets(data: object) -> list[InlineSecret]:
    found: list[InlineSecret] = []
    _walk(data, (), found)
    return found


def _walk(value: object, path: NodePath, found: list[InlineSecret]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            child = (*path, key)
            if _KEY_SHAPED.fullmatch(key):
                found.append(
                    InlineSecret(
                        child,
                        True,
                        "a key looks like a private key (secrets never go in the manifest)",
                    )
                )
            if key in SECRET_KEYS and item is not None and not isinstance(item, dict):
                found.append(
                    InlineSecret(
                        child,
                        False,
                        f"{format_path(child)} is written inline (secrets never go in the manifest)",
                    )
                )
                continue
            _walk(item, child, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, (*path, index), found)
    elif (
        isinstance(value, str)
        and _KEY_SHAPED.fullmatch(value)
        and not (path and path[-1] in _HEX_IDS)
    ):
        found.append(
            InlineSecret(
                path,
                False,
                f"{format_path(path)} looks like a private key (secrets never go in the manifest)",
            )
        )
