"""Put the sandbox's well-known dev keys into its Vault, at ``secret/sandbox/signers/<n>``."""

from __future__ import annotations

import hvac

from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS

SIGNERS_PATH = "sandbox/signers"


def seed_vault_signers(vault_addr: str, token: str, mount: str = "secret") -> None:
    client = hvac.Client(url=vault_addr, token=token)
    kv = client.secrets.kv.v2
    for n, (address, private_key) in enumerate(DEV_ACCOUNTS):
        wanted = {"address": address, "private_key": private_key}
        try:
            current = kv.read_secret_version(
                path=f"{SIGNERS_PATH}/{n}", mount_point=mount, raise_on_deleted_version=True
            )
            if current["data"]["data"] == wanted:
                continue
        except hvac.exceptions.InvalidPath:
            pass
        kv.create_or_update_secret(path=f"{SIGNERS_PATH}/{n}", secret=wanted, mount_point=mount)
