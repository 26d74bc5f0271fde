"""Conformance: the unmodified official client (dydx-v3-python 2.1.0) drives the emulator end to end."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import re
import uuid

import pytest
from dydx3.helpers.db import get_account_id
from support.emulator import (
    EmulatorProcess,
    fresh_wallet,
    mine,
    now_iso,
    rpc,
    wait_for,
)

from provisioner.sandbox.emulator.chain_follower import LOG_DEPOSIT

pytestmark = pytest.mark.sandbox

UUID_NAMESPACE = uuid.UUID("0f9da948-a6fb-4c45-9edc-4685c3f3317d")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _event_quantized_amount(rpc_url: str, tx_hash: str) -> int:
    receipt = rpc(rpc_url, "eth_getTransactionReceipt", tx_hash)
    (entry,) = [log for log in receipt["logs"] if log["topics"][0] == LOG_DEPOSIT]
    return int(entry["data"][2 + 5 * 64 : 2 + 6 * 64], 16)


def test_onboarding_keys_registration_and_deposit_through_the_official_client(
    emulator: EmulatorProcess,
) -> None:
    wallet = fresh_wallet(emulator.rpc_url, usdc_units=100 * 10**6)
    address = wallet.address.lower()
    client = emulator.client(wallet)

    # public
    now = client.public.get_time().data
    assert ISO_MS.match(now["iso"]) and isinstance(now["epoch"], float)
    assert client.public.check_if_user_exists(wallet.address).data == {
        "exists": False,
        "contractAddress": "",
        "isProxySigner": False,
    }

    # onboarding: the server's default key is the one the client recovers locally
    stark = client.onboarding.derive_stark_key()
    onboarded = client.onboarding.create_user(
        stark_public_key=stark["public_key"],
        stark_public_key_y_coordinate=stark["public_key_y_coordinate"],
        country="CH",
    ).data
    default_key = client.onboarding.recover_default_api_key_credentials()
    assert onboarded["apiKey"] == default_key
    assert client.api_key_credentials == default_key  # Client() recovered it at construction
    user, account = onboarded["user"], onboarded["account"]
    assert user["ethereumAddress"] == address and user["isRegistered"] is False
    assert user["country"] == "CH" and user["userData"] == {}
    assert (
        account["id"]
        == get_account_id(wallet.address)
        == str(uuid.uuid5(UUID_NAMESPACE, str(uuid.uuid5(UUID_NAMESPACE, address)) + "0"))
    )
    assert account["starkKey"] == f"{int(stark['public_key'], 16):064x}"
    assert account["accountNumber"] == "0" and account["positionId"].isdigit()
    assert account["quoteBalance"] == account["pendingDeposits"] == "0"
    assert ISO_MS.match(account["createdAt"])
    assert client.public.check_if_user_exists(wallet.address).data["exists"] is True

    # API keys
    assert client.private.get_user().data["user"] == user
    assert client.private.get_api_keys().data == {"apiKeys": [{"key": default_key["key"]}]}
    extra = client.eth_private.create_api_key().data["apiKey"]
    assert re.match(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", extra["key"])
    assert len(extra["secret"]) == 40 and len(extra["passphrase"]) == 20
    with_extra = emulator.client(wallet, api_key_credentials=extra)
    assert with_extra.private.get_user().data["user"]["ethereumAddress"] == address
    listed = [k["key"] for k in client.private.get_api_keys().data["apiKeys"]]
    assert listed == [default_key["key"], extra["key"]]
    assert client.eth_private.delete_api_key(extra["key"]).data == {"apiKey": extra["key"]}
    assert client.private.get_api_keys().data == {"apiKeys": [{"key": default_key["key"]}]}

    # accounts
    assert client.private.get_accounts().data == {"accounts": [account]}
    assert client.private.get_account().data == {"account": account}
    assert client.private.get_transfers().data == {"transfers": []}

    # registration on L1 with the emulator's signature
    signature = client.private.get_registration().data["signature"]
    assert re.match(r"^0x[0-9a-f]{130}$", signature)
    client.eth.wait_for_tx(
        client.eth.register_user(signature, stark_public_key=stark["public_key"])
    )
    wait_for(lambda: client.private.get_user().data["user"]["isRegistered"])

    # deposit "8.2": the client's float conversion sends 8199999 base units; the chain decides
    exchange = client.eth.get_exchange_contract().address
    client.eth.wait_for_tx(client.eth.set_token_max_allowance(exchange))
    tx_hash = str(
        client.eth.deposit_to_exchange(
            account["positionId"], "8.2", stark_public_key=stark["public_key"]
        )
    )
    client.eth.wait_for_tx(tx_hash)
    amount_units = _event_quantized_amount(emulator.rpc_url, tx_hash)
    assert amount_units == 8_199_999
    amount = "8.199999"

    pending = wait_for(lambda: client.private.get_transfers().data["transfers"])
    (transfer,) = pending
    assert transfer["status"] == "PENDING" and transfer["confirmedAt"] is None
    assert (
        transfer["type"] == "DEPOSIT"
        and transfer["creditAsset"] == transfer["debitAsset"] == "USDC"
    )
    assert transfer["creditAmount"] == transfer["debitAmount"] == amount
    assert transfer["transactionHash"] == tx_hash.lower()
    assert transfer["fromAddress"] == address and transfer["toAddress"] is None
    pending_account = client.private.get_account().data["account"]
    assert pending_account["pendingDeposits"] == amount and pending_account["quoteBalance"] == "0"

    mine(emulator.rpc_url, 40)

    def confirmed() -> dict[str, str] | None:
        (t,) = client.private.get_transfers(transfer_type="DEPOSIT", limit=10).data["transfers"]
        return t if t["status"] == "CONFIRMED" else None

    done = wait_for(confirmed)
    assert done["id"] == transfer["id"] and done["creditAmount"] == amount
    assert ISO_MS.match(done["confirmedAt"]) and done["confirmedAt"] >= done["createdAt"]
    credited = client.private.get_account().data["account"]
    assert credited["quoteBalance"] == credited["equity"] == credited["freeCollateral"] == amount
    assert credited["pendingDeposits"] == "0"

    # filters
    assert client.private.get_transfers(created_before_or_at=now_iso()).data["transfers"] == [done]
    assert client.private.get_transfers(created_before_or_at="2021-01-01T00:00:00.000Z").data == {
        "transfers": []
    }
    assert client.private.get_transfers(transfer_type="WITHDRAWAL").data == {"transfers": []}
