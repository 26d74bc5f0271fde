"""Open the three clients a run needs (Vault, chain, dYdX) from the manifest, sharing one redactor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from provisioner.clients.chain import ChainClient
from provisioner.clients.dydx import DydxClient
from provisioner.clients.ratelimit import RateLimiter
from provisioner.clients.retry import RetryPolicy
from provisioner.clients.transport import HttpTransport, Transport
from provisioner.clients.vault import VaultClient
from provisioner.errors import ProvisionerError
from provisioner.manifest.model import Manifest, RemoteSigner
from provisioner.redact import Redactor, display_url
from provisioner.secrets import SecretResolver
from provisioner.waits import Wait, WaitHook, no_wait_hook

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
    # a plan of a manifest nobody reviewed: metadata-only Vault reads, no signer, no credential
    untrusted: bool = False

    def close(self) -> None:
        """The end of the run: revoke a Vault login token (unless kept), close the transport."""
        self.vault.close()
        self.transport.close()


def endpoint_urls(manifest: Manifest) -> list[str]:
    """Every URL the manifest names: Vault, dYdX, the RPC and each remote signer."""
    signers = [a.signer.url for a in manifest.accounts if isinstance(a.signer, RemoteSigner)]
    return [manifest.vault.address, manifest.network.api_url, manifest.network.rpc_url, *signers]


def connect(
    manifest: Manifest,
    *,
    redactor: Redactor | None = None,
    env: Mapping[str, str] | None = None,
    log: Log = lambda _m: None,
    transport: Transport | None = None,
    untrusted: bool = False,
    allowed_env: frozenset[str] | None = None,
    revoke_vault_token: bool = True,
    on_wait: WaitHook = no_wait_hook,
) -> Connections:
    """Log in to Vault, reach the chain and check its id before anything else runs. Every
    client sends through ``transport`` (by default one new ``HttpTransport``).

    ``untrusted``: the manifest is a pull request's (see ``manifest.trust``); its endpoints
    were checked against the pins at load, and ``allowed_env`` limits what its ``env``
    references read. ``revoke_vault_token``: ``close`` revokes a token a login obtained.
    ``on_wait`` hears of every wait for a rate-limit window or a receipt, with its account.
    """
    redactor = redactor or Redactor()
    # an RPC provider's key sits in its URL's path, and library debug lines (-vv) print paths
    for url in endpoint_urls(manifest):
        redactor.register_url(url)
    transport = transport or HttpTransport()
    on_wait = _with_account_names(manifest, on_wait)
    resolver = SecretResolver(redactor, env, allowed_env=allowed_env if untrusted else None)
    vault = VaultClient.connect(
        manifest.vault,
        resolver,
        redactor,
        transport=transport,
        retry=LoggedRetry(RetryPolicy(), log),
        revoke_on_close=revoke_vault_token,
    )
    resolver.attach_vault(vault)
    chain = ChainClient(
        manifest.network.rpc_url,
        manifest.network,
        transport=transport,
        log=log,
        retry=CHAIN_RETRY,
        on_wait=on_wait,
    )
    try:
        actual = chain.chain_id()
    except BaseException:
        vault.close()  # a login token is revoked even when the run stops here
        raise
    if actual != manifest.network.chain_id:
        vault.close()
        raise GuardrailError(
            f"the RPC at {display_url(manifest.network.rpc_url)} serves chain {actual}, the manifest says {manifest.network.chain_id}; nothing was done"
        )
    dydx = DydxClient(
        manifest.network.api_url,
        manifest.network.chain_id,
        redactor=redactor,
        retry=RetryPolicy(),
        limiter=RateLimiter(on_wait=on_wait),
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
        untrusted=untrusted,
    )


def _with_account_names(manifest: Manifest, hook: WaitHook) -> WaitHook:
    """The clients know a wait by address; people know the account by name."""
    names = {a.address.lower(): a.name for a in manifest.accounts if a.address}

    def named(wait: Wait) -> None:
        hook(replace(wait, account=wait.account or names.get(wait.subject.lower())))

    return named
