"""Open the three clients a run needs (Vault, chain, dYdX) from the manifest, sharing one redactor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from provisioner.clients.chain import ChainClient
from provisioner.clients.dydx import DydxClient
from provisioner.clients.ratelimit import RateLimiter
from provisioner.clients.retry import RetryPolicy
from provisioner.clients.transport import HttpTransport, Transport
from provisioner.clients.vault import VaultClient
from provisioner.errors import ProvisionerError
from provisioner.manifest.model import Manifest
from provisioner.redact import Redactor, display_url
from provisioner.secrets import SecretResolver

Log = Callable[[str], None]


# A node restarting or a load balancer failing over is gone for seconds: wait up to ~15 s
# in all (reads, and rebroadcasts of the same signed bytes: both safe to repeat).
CHAIN_RETRY = RetryPolicy(max_attempts=7, base_delay=0.25, max_delay=4.0)


class GuardrailError(ProvisionerError):
    pass


T = TypeVar("T")


@dataclass(frozen=True)
class LoggedRetry:
    """The shared retry policy for a client that does not log its retries itself (Vault):
    every retry becomes a log line, shown with -v."""

    policy: RetryPolicy
    log: Log

    def call(self, fn: Callable[[], T], *, idempotent: bool, describe: str) -> T:
        return self.policy.call(fn, idempotent=idempotent, describe=describe, log=self.log)


@dataclass
class Connections:
    manifest: Manifest
    redactor: Redactor
    resolver: SecretResolver
    vault: VaultClient
    chain: ChainClient
    dydx: DydxClient
    log: Log
    transport: Transport


def connect(
    manifest: Manifest,
    *,
    redactor: Redactor | None = None,
    env: Mapping[str, str] | None = None,
    log: Log = lambda _m: None,
    transport: Transport | None = None,
) -> Connections:
    """Log in to Vault, reach the chain and check its id before anything else runs. Every
    client sends through ``transport`` (by default one new ``HttpTransport``)."""
    redactor = redactor or Redactor()
    transport = transport or HttpTransport()
    resolver = SecretResolver(redactor, env)
    vault = VaultClient.connect(
        manifest.vault,
        resolver,
        redactor,
        transport=transport,
        retry=LoggedRetry(RetryPolicy(), log),
    )
    resolver.attach_vault(vault)
    chain = ChainClient(
        manifest.network.rpc_url,
        manifest.network,
        transport=transport,
        log=log,
        retry=CHAIN_RETRY,
    )
    actual = chain.chain_id()
    if actual != manifest.network.chain_id:
        raise GuardrailError(
            f"the RPC at {display_url(manifest.network.rpc_url)} serves chain {actual}, the manifest says {manifest.network.chain_id}; nothing was done"
        )
    dydx = DydxClient(
        manifest.network.api_url,
        manifest.network.chain_id,
        redactor=redactor,
        retry=RetryPolicy(),
        limiter=RateLimiter(),
        transport=transport,
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
        transport=transport,
    )
