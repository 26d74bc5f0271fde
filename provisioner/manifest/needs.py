"""What a manifest takes from the environment at plan time, found without reading any of it.

``validate`` checks a manifest in a pull request's lint job, where no endpoint and no
secret is set: an unset ``${VAR}``, or a network shorthand whose URLs come from the
environment, is then something ``plan`` will need, not an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from provisioner.manifest.builder.network import SHORTHANDS
from provisioner.manifest.interpolate import substitute
from provisioner.manifest.model import Location
from provisioner.manifest.positions import NodePath, decode, parse_yaml

# Stands in for what the environment will give at plan time: a URL, since most of what
# manifests take from it is an endpoint; never contacted (validate touches no network).
PLACEHOLDER = "http://127.0.0.1:9"


@dataclass(frozen=True)
class EnvNeed:
    """``name`` is unset here and ``plan`` will need it, for the value at ``location``."""

    name: str
    location: Location
    what: str  # the value it gives: "network 'sandbox' rpc_url", "vault.address"

    def message(self) -> str:
        return f"{self.what} comes from {self.name}, not set here: {self.name} at plan time"


def env_needs(path: str, env: Mapping[str, str] | None = None) -> list[EnvNeed]:
    """Every unset (or empty: a fork's pull request gets empty secrets) variable the manifest at
    ``path`` refers to, where; [] when it cannot be parsed (the loader then says why)."""
    environment = {k: v for k, v in (os.environ if env is None else env).items() if v}
    try:
        text = decode(Path(path).read_bytes(), path)
        doc, _ = parse_yaml(text, path)
    except Exception:  # noqa: BLE001 - unreadable or not YAML: load_manifest reports it
        return []
    found: dict[tuple[str, Location], EnvNeed] = {}
    for node_path, value in _strings(doc.data, ()):
        for name in substitute(value, environment).missing:
            what = ".".join(str(p) for p in node_path) or "a value"
            found.setdefault(
                (name, doc.locate(node_path)), EnvNeed(name, doc.locate(node_path), what)
            )
    root = doc.data if isinstance(doc.data, dict) else {}
    network = root.get("network")
    short = SHORTHANDS.get(network) if isinstance(network, str) else None
    if short is not None:
        location = doc.locate(("network",))
        for field, template in (("api_url", short.api_url), ("rpc_url", short.rpc_url)):
            for name in substitute(template, environment).missing:
                what = f"network '{network}' {field}"
                found.setdefault((name, location), EnvNeed(name, location, what))
    return sorted(found.values(), key=lambda n: (n.location.line, n.location.column, n.name))


def with_placeholders(needs: list[EnvNeed], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with a stand-in for every variable ``needs`` names."""
    environment = dict(os.environ if env is None else env)
    environment.update({n.name: PLACEHOLDER for n in needs})
    return environment


def _strings(value: object, path: NodePath) -> Iterator[tuple[NodePath, str]]:
    if isinstance(value, str):
        if "$" in value:
            yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))
