"""The reference's test vectors (shared/reference/dydx-v3-api.md §2-§3), checked on the server side."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from dydx3 import Client
from support.emulator import EmulatorProcess

from provisioner.sandbox.emulator import errors
from provisioner.sandbox.emulator.auth import SignedRequest, parse_body, verify_api_key
from provisioner.sandbox.emulator.clock import parse_iso_ms
from provisioner.sandbox.emulator.credentials import ApiKeyCredentials, default_api_key
from provisioner.sandbox.emulator.errors import ApiError
from provisioner.sandbox.emulator.ids import account_id, user_id
from provisioner.sandbox.emulator.signatures import (
    ONBOARDING_ACTION,
    action_message,
    domain_separator,
    eth_private_message,
    parse_typed_signature,
    recover_signer,
)
from provisioner.sandbox.emulator.store import Store
from provisioner.sandbox.emulator.views import usdc

ETH_KEY = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"
ADDRESS = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"
TIMESTAMP = "2021-01-01T00:00:00.000Z"

VECTORS: dict[int, dict[str, Any]] = {
    11155111: {
        "domain": "21f1463ce861aedc8bc8eb9181f326a741529f0a19852384df60d0219356893f",
        "digest": "39e4be6461b4e594c1407ea25722db0e52530d67c4652df922bb12a90ecfac24",
        "onboarding": "0xff5aa99adb410383b8cf699690443a10a90c0e695f577c4b530fc07b1add6bd1"
        "1aa28efeb9976676ad5e68fbb5dd05e86873f1425b7ba0e91061d628d8183a921c00",
        "stark_private": 0x2D21C094FEDEA3E72BEF27FBCDCEAAFD34E88FC4B7586859E26E98B21E63A60,
        "stark_x": "0x15e2e074a7ac9e78edb2ee9f11a0c0c0a080c79758ab81616eea9c032c75265",
        "stark_y": "0x360408546b64238f80d7a8a336d7304d75f122a7e5bb22cbb7a14f550eac5a8",
        "key": ApiKeyCredentials(
            "30cb6046-8f4a-5677-a19c-a494ccb7c7e5",
            "4Yd_6JtH_-I2taoNQKAhkCifnVHQ2Unue88sIeuc",
            "Db1GQK5KpI_qeddgjF66",
        ),
        "eth_private": "0xad28b113b217de4a18f0dd47c36502ec03bc64ff6ca39c2ff4281f9bca7ced00"
        "7fa50676e890ee19475a336a19f2f05d28edccf70543c705a51e63f67ad0d5a51b00",
        "hmac_users": "vnD_3EC62IFaJ9idjvx-TRAzb-Je3S4R0Po5IlKQA_I=",
        "hmac_transfers": "Sam-dGj4lzDMJdCvhI41TkjUIbTkh9JzhKacrF9J0Qg=",
        "hmac_accounts": "d-pakP5XcVJF4MaL_oHM6VhyY1T-XXD1YoLttp2EZPE=",
    },
    1: {
        "domain": "e3ea0d0aaace5cf68ca5fce1c4af02705c7cb412bf1e07192676f8cb886f62f3",
        "digest": "ea8542295a919314b6db804076a90473337ebec28a962ea126aea3f2bcafa679",
        "onboarding": "0x0a30eea502e9805b95bd432fa1952e345dda3e9f72f7732aa00775865352e2b5"
        "4929803c221e9e63861e4604fbc796a4e1a6ca23d49452338a3d7602aaf6d1841c00",
        "stark_private": 0x170D807CAFE3D8B5758F3F698331D292BF5AEB71F6FD282F0831DEE094EE891,
        "stark_x": "0x39d88860b99b1809a63add01f7dfa59676ae006bbcdf38ff30b6a69dcf55ed3",
        "stark_y": "0x2bdd58a2c2acb241070bc5d55659a85bba65211890a8c47019a33902aba8400",
        "key": ApiKeyCredentials(
            "50fdcaa0-62b8-e827-02e8-a9520d46cb9f",
            "rdHdKDAOCa0B_Mq-Q9kh8Fz6rK3ocZNOhKB4QsR9",
            "12_1LuuJMZUxcj3kGBWc",
        ),
        "eth_private": "0xbff0325a42f2a9e689887b3939b45bd6e5da23676502dc182d9c5c3610b65fd5"
        "139db76fb6f46ae03db6edc2b7d13af4be12e493691c8f2447541b416aeefebe1b00",
        "hmac_users": "K0e9rk9r3BK6wWPJ2cAvdOhyXv_1y2NVoOqQI_Zeels=",
        "hmac_transfers": "xVsjMXjGGk3kdKKV_85i6HO816TwLS22_6s4PzobkRo=",
        "hmac_accounts": "W9pSZNMMEWJL4uElWYBScT1nx7k87WEA33nWakS9jhc=",
    },
}
NETWORKS = sorted(VECTORS)


@pytest.mark.parametrize("chain_id", NETWORKS)
def test_onboarding_digest_signer_and_default_key(chain_id: int) -> None:
    v = VECTORS[chain_id]
    assert domain_separator(chain_id).hex() == v["domain"]
    message = action_message(ONBOARDING_ACTION, chain_id)
    assert message.digest.hex() == v["digest"]
    signature = parse_typed_signature(v["onboarding"])
    assert recover_signer(signature, message) == ADDRESS.lower()
    assert default_api_key(signature) == v["key"]
    other_network = action_message(ONBOARDING_ACTION, 1 if chain_id != 1 else 11155111)
    assert recover_signer(signature, other_network) != ADDRESS.lower()


def test_docs_sample_credentials_are_the_zero_signature_case() -> None:
    zero = parse_typed_signature("0x" + "00" * 64 + "1b00")
    assert default_api_key(zero) == ApiKeyCredentials(
        "290decd9-548b-62a8-d603-45a988386fc8",
        "KQ3s2VSLYqjWA0WpiDhvyEumvJVIQAj2Ni-TFg7z",
        "S6a8lUhACPY2L5MWDvPl",
    )


@pytest.mark.parametrize("chain_id", NETWORKS)
def test_eth_private_vector(chain_id: int) -> None:
    message = eth_private_message(chain_id, "POST", "/v3/api-keys", "{}", TIMESTAMP)
    assert (
        recover_signer(parse_typed_signature(VECTORS[chain_id]["eth_private"]), message)
        == ADDRESS.lower()
    )


def test_eth_private_repo_vector_without_leading_slash() -> None:
    signature = (
        "0x3ec5317783b313b0acac1f13a23eaaa2fca1f45c2f395081e9bfc20b4cc1acb17e3d755764f37bf13fa62565c9cb50475e0a987ab0"
        "afa74efde0b3926bb7ab9d1b00"
    )
    message = eth_private_message(1, "POST", "v3/test", "{}", "2021-01-08T10:06:12.500Z")
    assert recover_signer(parse_typed_signature(signature), message) == ADDRESS.lower()


@pytest.mark.parametrize("chain_id", NETWORKS)
def test_client_side_stark_key_and_default_key_match_the_vectors(chain_id: int) -> None:
    v = VECTORS[chain_id]
    client = Client(host="http://127.0.0.1:1", network_id=chain_id, eth_private_key=ETH_KEY)
    stark = client.onboarding.derive_stark_key()
    assert int(stark["private_key"], 16) == v["stark_private"]
    assert int(stark["public_key"], 16) == int(v["stark_x"], 16)
    assert int(stark["public_key_y_coordinate"], 16) == int(v["stark_y"], 16)
    assert client.onboarding.recover_default_api_key_credentials() == v["key"].as_json()


def test_ids_match_the_vectors() -> None:
    assert user_id(ADDRESS) == "35312938-9e88-5ef2-832e-ecb6dfa225d8"
    assert account_id(ADDRESS, 0) == "59609ad5-3bf3-544b-9fba-836a7567fa74"
    assert account_id(ADDRESS, 1) == "aab43a37-8fcc-575a-a1e4-42eed4967a06"


@pytest.mark.parametrize("chain_id", NETWORKS)
def test_hmac_vectors(chain_id: int, tmp_path: Path) -> None:
    v = VECTORS[chain_id]
    creds: ApiKeyCredentials = v["key"]
    store = Store(tmp_path / "hmac.sqlite3")
    store.onboard(
        address=ADDRESS.lower(),
        account_id=account_id(ADDRESS),
        stark_key=v["stark_x"][2:].rjust(64, "0"),
        stark_key_y=v["stark_y"][2:].rjust(64, "0"),
        api_key=creds,
        referred_by=None,
        country=None,
        now=TIMESTAMP,
    )
    accounts_body = json.dumps(
        {"starkKey": v["stark_x"], "starkKeyYCoordinate": v["stark_y"]}
    )  # client spacing
    cases = [
        ("GET", "/v3/users", "{}", v["hmac_users"]),
        ("GET", "/v3/transfers?type=DEPOSIT&limit=50", "{}", v["hmac_transfers"]),
        ("POST", "/v3/accounts", accounts_body, v["hmac_accounts"]),
    ]
    now = parse_iso_ms(TIMESTAMP) + 5_000
    for method, path, body, signature in cases:
        for alphabet in (
            signature,
            signature.replace("-", "+").replace("_", "/"),
            signature.rstrip("="),
        ):
            headers = {
                "DYDX-SIGNATURE": alphabet,
                "DYDX-API-KEY": creds.key,
                "DYDX-TIMESTAMP": TIMESTAMP,
                "DYDX-PASSPHRASE": creds.passphrase,
            }
            request = SignedRequest(method, path, headers, body, parse_body(body))  # type: ignore[arg-type]
            assert verify_api_key(request, store, now).address == ADDRESS.lower()
        with pytest.raises(ApiError) as caught:
            verify_api_key(request, store, parse_iso_ms(TIMESTAMP) + 31_000)
        assert caught.value.msg == errors.STALE_TIMESTAMP
    store.close()


def test_usdc_amounts_are_exact() -> None:
    assert [usdc(n) for n in (0, 1, 8_200_000, 8_199_999, 10**6, 25_000_500_000, 2**200)] == [
        "0",
        "0.000001",
        "8.2",
        "8.199999",
        "1",
        "25000.5",
        f"{2**200 // 10**6}.{2**200 % 10**6:06d}".rstrip("0"),
    ]


@pytest.mark.sandbox
@pytest.mark.parametrize("chain_id", NETWORKS)
def test_server_issues_the_vector_default_key_on_onboarding(
    start_emulator: Any, chain_id: int
) -> None:
    v = VECTORS[chain_id]
    emulator: EmulatorProcess = start_emulator(
        "--chain-id", str(chain_id), "--rate-limits", "relaxed", name=f"vectors-{chain_id}"
    )
    response = requests.post(
        f"{emulator.url}/v3/onboarding",
        json={"starkKey": v["stark_x"], "starkKeyYCoordinate": v["stark_y"]},
        headers={"DYDX-SIGNATURE": v["onboarding"], "DYDX-ETHEREUM-ADDRESS": ADDRESS},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["apiKey"] == v["key"].as_json()
    assert body["account"]["id"] == "59609ad5-3bf3-544b-9fba-836a7567fa74"
    assert body["account"]["starkKey"] == v["stark_x"][2:].rjust(64, "0")
    assert body["user"]["ethereumAddress"] == ADDRESS.lower()
    # the other network's signature is refused here
    other = VECTORS[1 if chain_id != 1 else 11155111]["onboarding"]
    refused = requests.post(
        f"{emulator.url}/v3/onboarding",
        json={"starkKey": v["stark_x"], "starkKeyYCoordinate": v["stark_y"]},
        headers={"DYDX-SIGNATURE": other, "DYDX-ETHEREUM-ADDRESS": ADDRESS},
        timeout=10,
    )
    assert refused.status_code == 400
    assert refused.json() == {"errors": [{"msg": errors.INVALID_ONBOARDING_SIGNATURE}]}
