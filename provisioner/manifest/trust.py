"""How far a manifest is trusted: which variables it may read, which endpoints it may name.

A reviewed manifest may read any environment variable and name any endpoint, as long as
the endpoint speaks HTTPS (plain HTTP only to a loopback address, or with
``--allow-insecure-http``). An untrusted one (``plan --untrusted-manifest``: a pull
request nobody reviewed yet) reads only the variables named with ``--allow-env`` and must
name exactly the endpoints pinned outside it (``VAULT_ADDR``, ``DYDX_API_URL``,
``ETH_RPC_URL`` and the chain id); anything else is refused at its file:line before any
connection opens. Messages never quote a URL: it may carry a key or an interpolated value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from provisioner.manifest.model import Manifest
from provisioner.manifest.positions import NodePath

SECURE_SCHEMES = ("https", "wss")
PLAIN_SCHEMES = ("http", "ws")


@dataclass(frozen=True)
class PinnedEndpoints:
    """The endpoints an untrusted plan talks to, from the environment or flags, never the manifest."""

    vault_addr: str
    api_url: str
    rpc_url: str
    chain_id: int

    def variables(self) -> dict[str, str]:
        """What ``${VAULT_ADDR}``, ``${DYDX_API_URL}`` and ``${ETH_RPC_URL}`` read: the pins."""
        return {
            "VAULT_ADDR": self.vault_addr,
            "DYDX_API_URL": self.api_url,
            "ETH_RPC_URL": self.rpc_url,
        }


@dataclass(frozen=True)
class LoadPolicy:
    """``allowed_env`` None: every variable (a reviewed manifest); ``pins`` None: any endpoint."""

    allowed_env: frozenset[str] | None = None
    pins: PinnedEndpoints | None = None
    allow_insecure_http: bool = False

    @classmethod
    def untrusted(
        cls, pins: PinnedEndpoints, allow_env: frozenset[str], *, allow_insecure_http: bool = False
    ) -> LoadPolicy:
        return cls(allowed_env=allow_env, pins=pins, allow_insecure_http=allow_insecure_http)

    @property
    def is_untrusted(self) -> bool:
        return self.pins is not None

    def environment(self, env: Mapping[str, str]) -> tuple[dict[str, str], frozenset[str] | None]:
        """What interpolation may read, and the names it may ask for (None: any)."""
        if self.pins is None:
            return dict(env), self.allowed_env
        allowed = frozenset(self.allowed_env or ()) | self.pins.variables().keys()
        readable = {name: env[name] for name in allowed if name in env}
        return {**readable, **self.pins.variables()}, allowed


TRUSTED = LoadPolicy()  # a reviewed manifest: any variable, any HTTPS endpoint


@dataclass(frozen=True)
class EndpointProblem:
    path: NodePath
    message: str
    expected: str


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def plain_http_refused(url: str) -> bool:
    """An http:// or ws:// URL to a host that is not loopback; unparseable URLs are left to others."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme.lower() in PLAIN_SCHEMES and not is_loopback(host)


def same_endpoint(a: str, b: str) -> bool:
    """Equal after the normalisations that do not change where a request goes."""
    return _normal(a) == _normal(b)


def _normal(url: str) -> tuple[object, ...] | str:
    try:
        p = urlsplit(url.strip())
        default = {"http": 80, "ws": 80, "https": 443, "wss": 443}.get(p.scheme.lower())
        port = p.port or default
    except ValueError:
        return url
    return (
        p.scheme.lower(),
        p.username,
        p.password,
        (p.hostname or "").lower(),
        port,
        p.path.rstrip("/"),
        p.query,
    )


def endpoint_problems(data: Any, manifest: Manifest, policy: LoadPolicy) -> list[EndpointProblem]:
    """Endpoints that speak plain HTTP to a non-loopback host, and, for an untrusted manifest,
    endpoints other than the pinned ones. ``data`` is the interpolated document (for paths)."""
    problems: list[EndpointProblem] = []
    network = data.get("network") if isinstance(data, dict) else None
    block = isinstance(network, dict)
    api_path: NodePath = ("network", "api_url") if block else ("network",)
    rpc_path: NodePath = ("network", "rpc_url") if block else ("network",)
    chain_path: NodePath = ("network", "chain_id") if block else ("network",)
    endpoints: list[tuple[NodePath, str, str]] = [
        (("vault", "address"), "vault.address", manifest.vault.address),
        (api_path, "network.api_url", manifest.network.api_url),
        (rpc_path, "network.rpc_url", manifest.network.rpc_url),
        *((path, "signer.remote.url", url) for path, url in _remote_signer_urls(data)),
    ]
    if not policy.allow_insecure_http:
        for path, what, url in endpoints:
            if plain_http_refused(url):
                problems.append(
                    EndpointProblem(
                        path,
                        f"{what} is plain HTTP to a host that is not a loopback address",
                        "an https:// URL (http:// only for 127.0.0.1, ::1 or localhost), "
                        "or --allow-insecure-http",
                    )
                )
    pins = policy.pins
    if pins is None:
        return problems
    pinned = (
        (
            ("vault", "address"),
            "vault.address",
            manifest.vault.address,
            pins.vault_addr,
            "VAULT_ADDR",
            "--vault-addr",
        ),
        (
            api_path,
            "network.api_url",
            manifest.network.api_url,
            pins.api_url,
            "DYDX_API_URL",
            "--dydx-api-url",
        ),
        (
            rpc_path,
            "network.rpc_url",
            manifest.network.rpc_url,
            pins.rpc_url,
            "ETH_RPC_URL",
            "--eth-rpc-url",
        ),
    )
    for path, what, url, pin, variable, flag in pinned:
        if not same_endpoint(url, pin):
            problems.append(
                EndpointProblem(
                    path,
                    f"{what} is not the endpoint pinned by {variable} ({flag}); an untrusted "
                    "manifest may not choose where this run connects",
                    f"${{{variable}}}",
                )
            )
    if manifest.network.chain_id != pins.chain_id:
        problems.append(
            EndpointProblem(
                chain_path,
                f"network chain {manifest.network.chain_id} is not the chain pinned by "
                f"PROVISION_CHAIN_ID (--chain-id), {pins.chain_id}",
                f"chain_id: {pins.chain_id}",
            )
        )
    return problems


def _remote_signer_urls(data: Any) -> Iterator[tuple[NodePath, str]]:
    if not isinstance(data, dict):
        return
    blocks: list[tuple[NodePath, Any]] = []
    defaults = data.get("defaults")
    if isinstance(defaults, dict):
        blocks.append((("defaults", "signer"), defaults.get("signer")))
    accounts = data.get("accounts")
    if isinstance(accounts, list):
        for index, account in enumerate(accounts):
            if isinstance(account, dict):
                blocks.append((("accounts", index, "signer"), account.get("signer")))
    for path, signer in blocks:
        remote = signer.get("remote") if isinstance(signer, dict) else None
        url = remote.get("url") if isinstance(remote, dict) else None
        if isinstance(url, str):
            yield (*path, "remote", "url"), url
