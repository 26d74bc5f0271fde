"""Checks across entries: unique account names, addresses and API key names, and Vault
destinations that neither collide nor lie under ``vault.state_path``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provisioner.manifest import paths
from provisioner.manifest.builder.reader import Reader
from provisioner.manifest.positions import NodePath, format_path


@dataclass(frozen=True)
class Destination:
    """A Vault path the tool will write a secret to, and where the manifest asked for it."""

    vault_path: str
    source: NodePath
    account: str
    what: str


def api_key_names(r: Reader, items: object, base: NodePath) -> None:
    if not isinstance(items, list):
        return
    first: dict[str, NodePath] = {}
    for index, item in enumerate(items):
        name_path: NodePath = (*base, index, "name")
        if not isinstance(item, dict) or not r.ok(name_path) or "name" not in item:
            continue
        key_name = item["name"]
        if key_name in first:
            r.report(
                name_path,
                f"api key '{key_name}' is listed twice in {format_path(base)} "
                f"(first at line {r.line(first[key_name])})",
                "each API key name once per account",
            )
        else:
            first[key_name] = name_path


def unique_name(r: Reader, raw: dict[str, Any], path: NodePath, names: dict[str, NodePath]) -> None:
    name_path: NodePath = (*path, "name")
    name = raw.get("name")
    if not isinstance(name, str) or not r.ok(name_path):
        return
    if name in names:
        r.report(
            name_path,
            f"account name '{name}' is already used (line {r.line(names[name])})",
            "a unique name per account",
        )
    else:
        names[name] = name_path


def unique_address(
    r: Reader, raw: dict[str, Any], path: NodePath, addresses: dict[str, tuple[str, NodePath]]
) -> None:
    address_path: NodePath = (*path, "address")
    address = raw.get("address")
    if not isinstance(address, str) or not r.ok(address_path):
        return
    key = address.lower()
    if key in addresses:
        other, other_path = addresses[key]
        r.report(
            address_path,
            f"address {address} is already used by {other} (line {r.line(other_path)})",
            "one account per address",
        )
    else:
        name = raw.get("name")
        label = f"account '{name}'" if isinstance(name, str) else format_path(path)
        addresses[key] = (label, address_path)


def destinations(r: Reader, found: list[Destination], state_path: str | None) -> None:
    seen: dict[str, Destination] = {}
    reported: set[NodePath] = set()  # a template in defaults is reported once, not per account
    for dest in found:
        if dest.source in reported:
            continue
        if state_path and paths.is_under(dest.vault_path, state_path):
            reported.add(dest.source)
            r.report(
                dest.source,
                f"Vault path '{dest.vault_path}' ({dest.account}'s {dest.what}) lies under "
                f"vault.state_path '{state_path}', where the tool keeps its locks and journal",
                "a destination outside vault.state_path",
            )
            continue
        first = seen.get(dest.vault_path)
        if first is None:
            seen[dest.vault_path] = dest
            continue
        reported.add(dest.source)
        hint = " (put {name} in the template)" if dest.source[0] == "defaults" else ""
        r.report(
            dest.source,
            f"Vault path '{dest.vault_path}' for {dest.account}'s {dest.what} is already the "
            f"destination of {first.account}'s {first.what} (line {r.line(first.source)})",
            "each secret at a path of its own" + hint,
        )
