"""The second judge: the official TypeScript client (@dydxprotocol/v3-client 1.16.0, from npm).

It onboards (TypedData), creates and deletes API keys (its default, the
Ethereum-prefixed Hash method), reads with HMAC in standard base64 (the Python
client uses URL-safe), updates the user, adds an account, and signs orders,
withdrawals and fast withdrawals with starkex-lib, its own STARK implementation.

Where the two clients disagree, and what settles it:

- STARK public keys: TS sends 64 zero-padded digits without ``0x``, Python ``0x`` and
  unpadded. The docs show accounts' ``starkKey`` as 64 digits; both are accepted and
  stored in that one form (asserted below).
- HMAC signatures: TS standard base64, Python URL-safe. The docs say only "base64";
  both worked against dYdX, so both verify (the Python judge covers URL-safe).
- eth-private requests: TS signs with the Hash method (``t=01``), Python with
  ``NO_PREPEND`` (``t=00``); the docs' signature type list names both.
- fast-withdrawal ``toAddress``: Python lower-cases it, TS sends it as given; the fact
  the client signs hashes the address's bytes, so the case cannot matter.
"""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dydx3.starkex.helpers import private_key_to_public_key_pair_hex
from support.emulator import CHAIN_ID, REPO_ROOT, EmulatorProcess, fresh_wallet, fund

from provisioner.sandbox.emulator import errors

pytestmark = pytest.mark.sandbox

JUDGE = Path(__file__).with_name("ts_judge.js")
OTHER_STARK_KEY = "3c1e9550e66958296d11b60f8e8e7a7ad990d07fa65d5f7652c4a6c86d4cc0b"


class Judge:
    """The TS client in one node process: onboards at once, trades when told to go on."""

    def __init__(self, config: dict[str, Any]) -> None:
        node = shutil.which("node")
        assert node is not None, "node is needed for the TypeScript judge (installed with npm)"
        self.proc = subprocess.Popen(
            [node, str(JUDGE), json.dumps(config)],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def read(self, tag: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(tag + " "):
                return dict(json.loads(line.removeprefix(tag + " ")))
        assert self.proc.stderr is not None
        raise AssertionError(f"the TS judge stopped before {tag}:\n{self.proc.stderr.read()}")

    def go_on(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def test_the_typescript_client_onboards_signs_orders_and_withdraws(
    emulator: EmulatorProcess,
) -> None:
    wallet = fresh_wallet(emulator.rpc_url, usdc_units=1_000 * 10**6)
    second_x, second_y = private_key_to_public_key_pair_hex("0x7654321")
    config = {
        "host": emulator.url,
        "networkId": CHAIN_ID,
        "ethPrivateKey": wallet.key,
        "secondStarkKey": second_x,
        "secondStarkKeyY": second_y,
        "otherStarkPrivateKey": OTHER_STARK_KEY,
    }
    judge = Judge(config)
    try:
        seen = judge.read("ONBOARDED")
        _judge_onboarding(seen)
        # funded through L1 (the Python client's eth module), then the TS client trades
        fund(emulator.rpc_url, emulator.client(wallet), seen["onboarding"]["account"], "50")
        judge.go_on()
        traded = judge.read("RESULT")
    finally:
        judge.close()
    _judge_trading(traded)


def _judge_onboarding(seen: dict[str, Any]) -> None:

    assert set(seen["markets"]["markets"]) >= {"BTC-USD", "ETH-USD"}
    assert list(seen["marketsEth"]["markets"]) == ["ETH-USD"]
    account = seen["onboarding"]["account"]
    # TS sends the STARK key as 64 zero-padded digits, Python as unpadded 0x-hex: one account form
    assert account["starkKey"] == seen["stark"]["publicKey"].rjust(64, "0")
    assert seen["recoveredEqualsServer"] is True
    assert seen["onboarding"]["apiKeyShape"] == ["key", "passphrase", "secret"]
    default_key = seen["apiKey"]["key"]
    listed = [k["key"] for k in seen["apiKeysWithExtra"]["apiKeys"]]
    assert listed == [default_key, seen["extraKey"]]
    assert seen["deleted"] == {"apiKey": seen["extraKey"]}
    assert seen["apiKeysAfter"] == {"apiKeys": [{"key": default_key}]}
    assert seen["deletedKeyRead"] == {"status": 401, "msg": errors.API_KEY_NOT_FOUND}

    user = seen["user"]["user"]
    assert user["username"].startswith("ts_") and user["userData"] == {"desk": "ts"}
    assert user["isSharingAddress"] is True and user["languageCode"] == "en"
    assert seen["second"]["data"]["account"]["accountNumber"] == "1"
    assert [a["accountNumber"] for a in seen["accounts"]["accounts"]] == ["0", "1"]
    assert seen["account"]["account"]["id"] == account["id"]
    assert seen["positions"] == {"positions": []}

    # starkex-lib's signatures verify: unfunded, the collateral check is what refuses them
    assert seen["unfundedWithdrawal"] == {
        "status": 400,
        "msg": "Withdrawal would put account under collateralization minumum",
    }
    assert seen["wrongKeyOrder"] == {"status": 400, "msg": "Invalid signature for order"}


def _judge_trading(traded: dict[str, Any]) -> None:
    assert traded["before"]["freeCollateral"] == "50"
    placed = traded["placed"]["data"]["order"]
    assert placed["status"] == "PENDING" and placed["clientId"] == "ts-far-bid"
    assert traded["fetched"]["order"]["status"] == "OPEN"
    assert traded["byClientId"]["order"]["id"] == placed["id"]
    assert [o["id"] for o in traded["open"]["orders"]] == [placed["id"]]
    assert traded["held"]["freeCollateral"] == "49.95"
    assert traded["canceled"]["cancelOrder"]["status"] == "CANCELED"
    assert traded["secondStatus"] == "PENDING"  # a post-only ask far above the market rests
    assert [o["clientId"] for o in traded["cancelAll"]["cancelOrders"]] == ["ts-far-bid-2"]
    assert traded["withdrawal"]["data"]["withdrawal"]["debitAmount"] == "3"
    assert traded["fastWithdrawal"]["data"]["withdrawal"]["type"] == "FAST_WITHDRAWAL"
    kinds = sorted(t["type"] for t in traded["transfers"]["transfers"])
    assert kinds == ["DEPOSIT", "FAST_WITHDRAWAL", "WITHDRAWAL"]
    assert traded["after"]["quoteBalance"] == "45" and traded["after"]["freeCollateral"] == "45"
