"""Open the three clients a run needs (Vault, chain, dYdX) from the manifest, sharing one redactor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from provisioner.clients.chain import ChainClient
from provisioner.clients.dydx import DydxClient
from provisioner.clients.ratelimit import RateLimiter
from provisioner.clients.retry import RetryPolicy
from provisioner.clients.vault import VaultClient
from provisioner.errors import ProvisionerError
from provisioner.manifest.model import Manifest
from provisioner.redact import Redactor
from provisioner.secrets import SecretResolver

Log = Callable[[str], None]


class GuardrailError(ProvisionerError):
    pass


@dataclass
class Connections:
    manifest: Manifest
    redactor: Redactor
    resolver: SecretResolver
    vault: VaultClient
    chain: ChainClient
    dydx: DydxClient
    log: Log


def connect(
    manifest: Manifest,
    *,
    redactor: Redactor | None = None,
    env: Mapping[str, str] | None = None,
    log: Log = lambda _m: None,
) -> Connections:
    """Log in to Vault, reach the chain and check its id before anything else runs."""
    redactor = redactor or Redactor()
    resolver = SecretResolver(redactor, env)
    vault = VaultClient.connect(manifest.vault, resolver, redactor, retry=RetryPolicy())
    resolver.attach_vault(vault)
    chain = ChainClient(manifest.network.rpc_url, manifest.network, log=log)
    actual = chain.chain_id()
    if actual != manifest.network.chain_id:
        raise GuardrailError(
            f"the RPC at {manifest.network.rpc_url} serves chain {actual}, the manifest says {manifest.network.chain_id}; nothing was done"
        )
    dydx = DydxClient(
        manifest.network.api_url,
        manifest.network.chain_id,
        redactor=redactor,
        retry=RetryPolicy(),
        limiter=RateLimiter(),
        log=log,
    )
    return Connections(
        manifest=manifest,
        redactor=redactor,
        resolver=resolver,
        vault=vault,
        chain=chain,
        dydx=dydx,
        log=log,
    )
