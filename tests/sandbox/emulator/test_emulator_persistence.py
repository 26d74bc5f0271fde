"""State survives a kill: users, keys and transfers are read back from the SQLite file."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import signal
import time
from typing import Any

import pytest
from support.emulator import EmulatorProcess, fresh_wallet, mine, onboard, wait_for

pytestmark = pytest.mark.sandbox


def test_killed_and_restarted_emulator_keeps_users_keys_and_transfers(start_emulator: Any) -> None:
    emulator: EmulatorProcess = start_emulator(
        "--admin",
        "--rate-limits",
        "relaxed",
        "--poll-interval",
        "0.1",
        "--confirmations",
        "2",
        name="crash",
    )
    wallet = fresh_wallet(emulator.rpc_url, usdc_units=50 * 10**6)
    client, data = onboard(emulator, wallet)
    stark_key = data["stark"]["public_key"]
    extra = client.eth_private.create_api_key().data["apiKey"]
    client.eth.wait_for_tx(
        client.eth.register_user(
            client.private.get_registration().data["signature"], stark_public_key=stark_key
        )
    )
    client.eth.wait_for_tx(
        client.eth.set_token_max_allowance(client.eth.get_exchange_contract().address)
    )
    client.eth.wait_for_tx(
        client.eth.deposit_to_exchange(
            data["account"]["positionId"], "12.5", stark_public_key=stark_key
        )
    )
    mine(emulator.rpc_url, 2)
    before = wait_for(
        lambda: [
            t
            for t in client.private.get_transfers().data["transfers"]
            if t["status"] == "CONFIRMED"
        ]
    )
    account_before = client.private.get_account().data["account"]
    assert account_before["quoteBalance"] == "12.5"

    assert emulator.stop(signal.SIGKILL) == -signal.SIGKILL
    emulator.start()

    assert client.public.check_if_user_exists(wallet.address).data["exists"] is True
    keys = [k["key"] for k in client.private.get_api_keys().data["apiKeys"]]
    assert keys == [data["apiKey"]["key"], extra["key"]]
    assert (
        emulator.client(wallet, api_key_credentials=extra)
        .private.get_user()
        .data["user"]["isRegistered"]
    )
    time.sleep(0.3)  # a few follower polls: the cursor was saved, nothing is credited twice
    assert client.private.get_transfers().data["transfers"] == before
    assert client.private.get_account().data["account"] == account_before

    started = time.monotonic()
    assert emulator.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
