"""Put the sandbox's well-known dev keys into its Vault, at ``secret/sandbox/signers/<n>``."""

from __future__ import annotations

import time
from typing import Any

import hvac

from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS

SIGNERS_PATH = "sandbox/signers"


def seed_vault_signers(vault_addr: str, token: str, mount: str = "secret") -> None:
    client = hvac.Client(url=vault_addr, token=token)
    kv = client.secrets.kv.v2
    for n, (address, private_key) in enumerate(DEV_ACCOUNTS):
        wanted = {"address": address, "private_key": private_key}
        try:
            current = _read(kv, f"{SIGNERS_PATH}/{n}", mount)
            if current["data"]["data"] == wanted:
                continue
        except hvac.exceptions.InvalidPath:
            pass
        kv.create_or_update_secret(path=f"{SIGNERS_PATH}/{n}", secret=wanted, mount_point=mount)


_MOUNT_UPGRADE_S = 30.0


def _read(kv: Any, path: str, mount: str) -> Any:
    """A fresh dev server upgrades its KV mount to v2 in the background and answers 400
    meanwhile (seconds on a loaded machine): wait for it, a bounded time."""
    deadline = time.monotonic() + _MOUNT_UPGRADE_S
    while True:
        try:
            return kv.read_secret_version(
                path=path, mount_point=mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidRequest:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
