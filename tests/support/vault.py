"""Types shared by the Vault tests and their fixtures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from provisioner.clients.vault import VaultClient

MOUNT = "secret"  # the dev server's KV v2 mount

ClientFactory = Callable[..., VaultClient]


@dataclass(frozen=True)
class VaultServer:
    addr: str
    root_token: str
