"""The trust a run gives its manifest, read from the command line and the environment."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from provisioner.errors import ProvisionerError
from provisioner.manifest.trust import LoadPolicy, PinnedEndpoints

# (attribute, flag, environment variable) of each pin
_PINS = (
    ("vault_addr", "--vault-addr", "VAULT_ADDR"),
    ("dydx_api_url", "--dydx-api-url", "DYDX_API_URL"),
    ("eth_rpc_url", "--eth-rpc-url", "ETH_RPC_URL"),
    ("chain_id", "--chain-id", "PROVISION_CHAIN_ID"),
)


def load_policy(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> LoadPolicy:
    """``LoadPolicy`` for this command: untrusted with ``--untrusted-manifest`` (pins required)."""
    environment = os.environ if env is None else env
    insecure = bool(getattr(args, "allow_insecure_http", False))
    if not getattr(args, "untrusted_manifest", False):
        return LoadPolicy(allow_insecure_http=insecure)
    values: dict[str, str] = {}
    missing = []
    for attribute, flag, variable in _PINS:
        value = getattr(args, attribute, None) or environment.get(variable, "")
        if value.strip():
            values[attribute] = value.strip()
        else:
            missing.append(f"{variable} (or {flag})")
    if missing:
        raise ProvisionerError(
            "--untrusted-manifest takes every endpoint from outside the manifest; not set: "
            + ", ".join(missing)
        )
    try:
        chain_id = int(values["chain_id"], 0)
    except ValueError:
        raise ProvisionerError(
            "PROVISION_CHAIN_ID (--chain-id): expected a chain id such as 1 or 11155111"
        ) from None
    pins = PinnedEndpoints(
        vault_addr=values["vault_addr"],
        api_url=values["dydx_api_url"],
        rpc_url=values["eth_rpc_url"],
        chain_id=chain_id,
    )
    allowed = frozenset(getattr(args, "allow_env", None) or ())
    return LoadPolicy.untrusted(pins, allowed, allow_insecure_http=insecure)
