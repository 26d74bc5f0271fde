"""`make demo`'s last step (scripts/trade_proof.py) on the session sandbox, from Vault records alone.

The records are built by provisioner.records, the layout `provision apply` writes,
for an account onboarded and funded on the sandbox; the script gets nothing else.
"""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import importlib.util
import secrets
from types import ModuleType

import hvac
import pytest
from dydx3 import Client
from support.emulator import CHAIN_ID, REPO_ROOT, fresh_wallet, fund

from provisioner import records
from provisioner.clients.dydx import ApiCredentials, OnboardedAccount, StarkKeyPair
from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "trade_proof", REPO_ROOT / "scripts/trade_proof.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_stored_keys_place_and_cancel_a_post_only_order(
    sandbox_env: SandboxInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    wallet = fresh_wallet(sandbox_env.rpc_url, usdc_units=100 * 10**6)
    client = Client(
        host=sandbox_env.api_url,
        network_id=CHAIN_ID,
        eth_private_key=wallet.key,
        web3_provider=sandbox_env.rpc_url,
    )
    keys = client.onboarding.derive_stark_key()
    onboarded = client.onboarding.create_user(
        stark_public_key=keys["public_key"],
        stark_public_key_y_coordinate=keys["public_key_y_coordinate"],
    ).data
    account = onboarded["account"]
    fund(sandbox_env.rpc_url, client, account, "20")

    name = f"proof-{secrets.token_hex(4)}"
    pair = StarkKeyPair.from_private_key(int(keys["private_key"], 16))
    creds = ApiCredentials(**onboarded["apiKey"])
    placed = OnboardedAccount(account["id"], int(account["positionId"]), pair.public_key)
    vault = hvac.Client(url=sandbox_env.vault_addr, token=sandbox_env.vault_token)
    for path, data in (
        (f"dydx/{name}/stark", records.stark_secret(pair, wallet.address, "sandbox", placed)),
        (f"dydx/{name}/api/default", records.api_key_secret(creds, wallet.address, "sandbox")),
    ):
        vault.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point="secret")

    assert _script().main(["--account", name]) == 0
    shown = capsys.readouterr().out
    assert f"position {account['positionId']}, equity 20" in shown
    assert "signed with the STARK key: PENDING" in shown
    assert ": OPEN" in shown and "cancelled: CANCELED (USER_CANCELED)" in shown
    for secret in (creds.secret, creds.passphrase, keys["private_key"][2:]):
        assert secret not in shown
