"""Our own HMAC, ids, paths, STARK public keys and EIP-55, held to dydx3 / eth_utils and the reference vectors.

They replace dydx3 and eth_utils on the paths a converged plan takes (see
provisioner/clients/dydx_wire.py, stark_curve.py, provisioner/ethaddress.py), so
they must give exactly what the libraries give.
"""

import provisioner  # noqa: F401,I001  (the Python 3.11 import fix before dydx3)

import base64
import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from dydx3.helpers.db import get_account_id, get_user_id
from dydx3.helpers.request_helpers import generate_query_path, json_stringify
from dydx3.modules.private import Private
from dydx3.starkex.helpers import private_key_to_public_key_pair_hex
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from provisioner.clients import dydx_wire, stark_curve
from provisioner.ethaddress import eip55, selector, to_checksum

# shared/reference/dydx-v3-api.md §3, Sepolia and mainnet columns
ADDRESS = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"
TS = "2021-01-01T00:00:00.000Z"
SEPOLIA_SECRET = "4Yd_6JtH_-I2taoNQKAhkCifnVHQ2Unue88sIeuc"
MAINNET_SECRET = "rdHdKDAOCa0B_Mq-Q9kh8Fz6rK3ocZNOhKB4QsR9"
STARK_X = 0x15E2E074A7AC9E78EDB2EE9F11A0C0C0A080C79758AB81616EEA9C032C75265
STARK_Y = 0x360408546B64238F80D7A8A336D7304D75F122A7E5BB22CBB7A14F550EAC5A8


@pytest.mark.parametrize(
    ("secret", "method", "path", "body", "expected"),
    [
        (SEPOLIA_SECRET, "GET", "/v3/users", "", "vnD_3EC62IFaJ9idjvx-TRAzb-Je3S4R0Po5IlKQA_I="),
        (MAINNET_SECRET, "GET", "/v3/users", "", "K0e9rk9r3BK6wWPJ2cAvdOhyXv_1y2NVoOqQI_Zeels="),
        (
            SEPOLIA_SECRET,
            "GET",
            "/v3/transfers?type=DEPOSIT&limit=50",
            "",
            "Sam-dGj4lzDMJdCvhI41TkjUIbTkh9JzhKacrF9J0Qg=",
        ),
        (
            SEPOLIA_SECRET,
            "POST",
            "/v3/accounts",
            dydx_wire.compact_json({"starkKey": hex(STARK_X), "starkKeyYCoordinate": hex(STARK_Y)}),
            "d-pakP5XcVJF4MaL_oHM6VhyY1T-XXD1YoLttp2EZPE=",
        ),
    ],
)
def test_hmac_signature_matches_the_reference_vectors(
    secret: str, method: str, path: str, body: str, expected: str
) -> None:
    assert dydx_wire.hmac_signature(secret, TS, method, path, body) == expected


def test_hmac_signature_equals_dydx3_for_random_requests() -> None:
    rng = random.Random(7)
    for _ in range(50):
        secret = base64.urlsafe_b64encode(rng.randbytes(30)).decode()
        path = dydx_wire.query_path(
            "/v3/" + rng.choice(["api-keys", "registration", "transfers"]),
            {"limit": rng.randint(1, 99), "createdBeforeOrAt": None},
        )
        creds = {"key": "k", "secret": secret, "passphrase": "p"}
        private = Private("http://x", 1, None, ADDRESS, None, api_key_credentials=creds)
        theirs = private.sign(request_path=path, method="GET", iso_timestamp=TS, data={})
        assert dydx_wire.hmac_signature(secret, TS, "GET", path) == theirs


def test_paths_ids_bodies_and_timestamps_equal_dydx3() -> None:
    params = {"ethereumAddress": ADDRESS, "none": None, "limit": 5}
    assert dydx_wire.query_path("/v3/users/exists", params) == generate_query_path(
        "/v3/users/exists", params
    )
    assert dydx_wire.query_path("/v3/api-keys", {}) == "/v3/api-keys"
    body = {"starkKey": "0x1", "nested": {"a": [1, 2]}}
    assert dydx_wire.compact_json(body) == json_stringify(body)
    assert dydx_wire.user_id(ADDRESS) == get_user_id(ADDRESS.lower())
    assert dydx_wire.user_id(ADDRESS) == "35312938-9e88-5ef2-832e-ecb6dfa225d8"  # reference
    assert dydx_wire.account_id(ADDRESS) == get_account_id(ADDRESS)
    assert dydx_wire.account_id(ADDRESS) == "59609ad5-3bf3-544b-9fba-836a7567fa74"
    assert dydx_wire.account_id(ADDRESS, 1) == "aab43a37-8fcc-575a-a1e4-42eed4967a06"
    stamp = dydx_wire.now_iso()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    parsed = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 5


def test_stark_public_keys_equal_dydx3_and_the_reference() -> None:
    reference = stark_curve.public_key(
        0x2D21C094FEDEA3E72BEF27FBCDCEAAFD34E88FC4B7586859E26E98B21E63A60
    )
    assert reference == (STARK_X, STARK_Y)
    rng = random.Random(11)
    keys = [1, 2, 3, stark_curve.ORDER - 1] + [rng.randrange(1, 2**251) for _ in range(8)]
    for private_key in keys:
        x, y = stark_curve.public_key(private_key)
        assert [hex(x), hex(y)] == private_key_to_public_key_pair_hex(hex(private_key))
        assert stark_curve.is_on_curve(x, y)


@pytest.mark.parametrize("bad", [0, -1, stark_curve.ORDER])
def test_a_private_key_outside_the_group_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="curve order"):
        stark_curve.public_key(bad)


def test_eip55_and_selectors_equal_eth_utils() -> None:
    rng = random.Random(5)
    for _ in range(500):
        raw = "0x" + rng.randbytes(20).hex()
        assert eip55(raw) == to_checksum_address(raw)
        assert to_checksum(raw) == to_checksum_address(raw)
        assert to_checksum(raw.upper().replace("0X", "0x")) == to_checksum_address(raw)
    assert to_checksum(ADDRESS) == ADDRESS
    swapped = "0x" + ADDRESS[2:].swapcase()  # mixed case, every letter's case wrong
    for bad in (ADDRESS.replace("F8bf", "f8bf"), swapped, "0x1234", ADDRESS[2:], "0x" + "g" * 40):
        with pytest.raises(ValueError, match="not an Ethereum address"):
            to_checksum(bad)
    for signature in ("balanceOf(address)", "getEthKey(uint256)", "allowance(address,address)"):
        assert selector(signature) == bytes(function_signature_to_4byte_selector(signature))


def test_a_converged_plan_imports_neither_dydx3_nor_web3() -> None:
    """The plan path's modules stay light: dydx3 (web3, sympy), eth_abi, eth_account and
    eth_utils are imported only where a signature or a transaction is made."""
    code = (
        "import sys, provisioner.cli.runtime, provisioner.cli.commands.plan, "
        "provisioner.cli.commands.status, provisioner.observe, provisioner.plan.render\n"
        "heavy = ('dydx3', 'web3', 'sympy', 'eth_abi', 'eth_account', 'eth_utils', 'pkg_resources')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == ""
