"""Unknown or malformed input gets a 4xx with the errors envelope, never a 500."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import random
from typing import Any

import pytest
import requests
from support.emulator import (
    EmulatorProcess,
    Wallet,
    api_key_headers,
    compact,
    errors_of,
    eth_private_headers,
    fresh_wallet,
    onboard,
    onboarding_signature,
)

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def member(emulator: EmulatorProcess) -> tuple[Wallet, dict[str, Any]]:
    wallet = fresh_wallet(emulator.rpc_url)
    _, data = onboard(emulator, wallet)
    return wallet, data


def _assert_client_error(
    response: requests.Response, status: int | None = None
) -> list[dict[str, Any]]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    return errors_of(response)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v3/nowhere", 404),
        ("GET", "/v3", 404),
        ("GET", "/", 404),
        ("PATCH", "/v3/users", 405),
        ("GET", "/v3/users/exists", 400),
        ("GET", "/v3/users/exists?ethereumAddress=0xnothex", 400),
        ("GET", "/v3/users/exists?ethereumAddress=" + "0" * 42, 400),
        ("GET", "/v3/accounts/not-a-uuid", 401),  # auth comes first
        ("DELETE", "/v3/api-keys", 401),
    ],
)
def test_unknown_routes_and_bad_public_queries(
    emulator: EmulatorProcess, method: str, path: str, status: int
) -> None:
    _assert_client_error(requests.request(method, f"{emulator.url}{path}", timeout=5), status)


def _onboarding(
    emulator: EmulatorProcess, wallet: Wallet, body: str, **headers: str
) -> requests.Response:
    sent = {
        "DYDX-SIGNATURE": onboarding_signature(wallet.key, wallet.address),
        "DYDX-ETHEREUM-ADDRESS": wallet.address,
        "Content-Type": "application/json",
    }
    sent.update(headers)
    return requests.post(
        f"{emulator.url}/v3/onboarding", data=body.encode(), headers=sent, timeout=5
    )


X = "0x15e2e074a7ac9e78edb2ee9f11a0c0c0a080c79758ab81616eea9c032c75265"
Y = "0x360408546b64238f80d7a8a336d7304d75f122a7e5bb22cbb7a14f550eac5a8"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("not json", "body"),
        ("[1, 2]", "body"),
        ('"text"', "body"),
        ("{}", "starkKey"),
        ('{"starkKey": 12, "starkKeyYCoordinate": "0x1"}', "starkKey"),
        ('{"starkKey": "0x", "starkKeyYCoordinate": "0x1"}', "starkKey"),
        ('{"starkKey": "0xzz", "starkKeyYCoordinate": "0x1"}', "starkKey"),
        ('{"starkKey": "0x' + "f" * 64 + '", "starkKeyYCoordinate": "0x1"}', "starkKey"),
        (f'{{"starkKey": "{X}"}}', "starkKeyYCoordinate"),
        (f'{{"starkKey": "{X}", "starkKeyYCoordinate": "0x1"}}', "starkKeyYCoordinate"),
        (
            f'{{"starkKey": "{X}", "starkKeyYCoordinate": "{Y}", "country": "Switzerland"}}',
            "country",
        ),
        (
            f'{{"starkKey": "{X}", "starkKeyYCoordinate": "{Y}", "referredByAffiliateLink": 5}}',
            "referredByAffiliateLink",
        ),
    ],
)
def test_malformed_onboarding_bodies(emulator: EmulatorProcess, body: str, param: str) -> None:
    wallet = fresh_wallet(emulator.rpc_url, eth_wei=0)
    (entry,) = _assert_client_error(_onboarding(emulator, wallet, body), 400)
    assert entry["param"] == param and entry["msg"] == "Invalid value"
    assert (
        requests.get(
            f"{emulator.url}/v3/users/exists?ethereumAddress={wallet.address}", timeout=5
        ).json()["exists"]
        is False
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"DYDX-ETHEREUM-ADDRESS": "0x1234"},
        {"DYDX-ETHEREUM-ADDRESS": ""},
        {"DYDX-SIGNATURE": "0x"},
        {"DYDX-SIGNATURE": "0x\u00fc" * 33},
    ],
)
def test_malformed_onboarding_headers(emulator: EmulatorProcess, headers: dict[str, str]) -> None:
    wallet = fresh_wallet(emulator.rpc_url, eth_wei=0)
    _assert_client_error(
        _onboarding(
            emulator, wallet, f'{{"starkKey": "{X}", "starkKeyYCoordinate": "{Y}"}}', **headers
        )
    )


def test_oversized_and_non_utf8_bodies(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]]
) -> None:
    wallet, _ = member
    big = requests.post(
        f"{emulator.url}/v3/onboarding", data=b"{" + b" " * 200_000 + b"}", timeout=5
    )
    _assert_client_error(big, 413)
    headers = eth_private_headers(wallet.key, wallet.address, "POST", "/v3/api-keys")
    headers["Content-Type"] = "application/json; charset=utf-8"
    bad = requests.post(
        f"{emulator.url}/v3/api-keys", data=b"\xff\xfe{", headers=headers, timeout=5
    )
    _assert_client_error(bad, 400)


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v3/transfers?limit=0", "limit"),
        ("/v3/transfers?limit=101", "limit"),
        ("/v3/transfers?limit=ten", "limit"),
        ("/v3/transfers?type=GIFT", "type"),
        ("/v3/transfers?createdBeforeOrAt=soon", "createdBeforeOrAt"),
        ("/v3/accounts/not-a-uuid", "id"),
    ],
)
def test_malformed_private_queries(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]], path: str, param: str
) -> None:
    _, data = member
    response = requests.get(
        f"{emulator.url}{path}", headers=api_key_headers(data["apiKey"], "GET", path), timeout=5
    )
    (entry,) = _assert_client_error(response, 400)
    assert entry["param"] == param


def test_unknown_and_foreign_accounts_are_not_found(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]]
) -> None:
    _, data = member
    _, other = onboard(emulator, fresh_wallet(emulator.rpc_url))
    for account_id in ("00000000-0000-0000-0000-000000000000", other["account"]["id"]):
        path = f"/v3/accounts/{account_id}"
        response = requests.get(
            f"{emulator.url}{path}", headers=api_key_headers(data["apiKey"], "GET", path), timeout=5
        )
        _assert_client_error(response, 404)


def test_bad_account_number_header(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]]
) -> None:
    _, data = member
    headers = api_key_headers(data["apiKey"], "GET", "/v3/registration")
    for number, status in (("x", 400), ("7", 404)):
        headers["DYDX-ACCOUNT-NUMBER"] = number
        response = requests.get(f"{emulator.url}/v3/registration", headers=headers, timeout=5)
        _assert_client_error(response, status)


def test_delete_api_key_without_a_key(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]]
) -> None:
    wallet, _ = member
    headers = eth_private_headers(wallet.key, wallet.address, "DELETE", "/v3/api-keys")
    response = requests.delete(f"{emulator.url}/v3/api-keys", data="{}", headers=headers, timeout=5)
    (entry,) = _assert_client_error(response, 400)
    assert entry["param"] == "apiKey"


def test_random_garbage_never_gets_a_500(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]]
) -> None:
    wallet, data = member
    rng = random.Random(4)
    paths = [
        "/v3/time", "/v3/users/exists", "/v3/onboarding", "/v3/users", "/v3/registration", "/v3/api-keys",
        "/v3/accounts", "/v3/accounts/" + data["account"]["id"], "/v3/transfers", "/v3/recovery",
    ]  # fmt: skip
    junk = [
        "",
        "0x",
        "²",
        "٣",
        "-1",
        "1e400",
        "[[[[[[[[",
        "\u00ff" * 20,
        "null",
        "{}",
        "0x" + "f" * 200,
        "%00",
        "a=b&c",
    ]
    statuses = []
    for _ in range(200):
        path = rng.choice(paths)
        query = "&".join(
            f"{rng.choice(['limit', 'type', 'createdBeforeOrAt', 'apiKey', 'ethereumAddress'])}={rng.choice(junk)}"
            for _ in range(rng.randint(0, 3))
        )
        target = path + ("?" + query if query else "")
        method = rng.choice(["GET", "POST", "DELETE", "PUT"])
        kind = rng.choice(["none", "api key", "eth key", "junk"])
        headers: dict[str, str] = {}
        if kind == "api key":
            headers = api_key_headers(data["apiKey"], method, target, rng.choice(["", "{}"]))
        elif kind == "eth key":
            headers = eth_private_headers(wallet.key, wallet.address, method, target)
        elif kind == "junk":
            headers = {
                "DYDX-SIGNATURE": rng.choice(junk),
                "DYDX-ETHEREUM-ADDRESS": rng.choice([*junk, wallet.address]),
            }
        for name in list(headers):
            if rng.random() < 0.2:
                headers[name] = rng.choice(junk)
        body = rng.choice(junk + ["[" * 5000, '{"starkKey": "' + rng.choice(junk) + '"}'])
        encoded = {k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()}
        response = requests.request(
            method, emulator.url + target, data=body.encode(), headers=encoded, timeout=10
        )
        statuses.append(response.status_code)
        assert response.status_code < 500, (method, target, headers, body, response.text)
        if response.status_code >= 400:
            errors_of(response)
    assert {200, 400, 401} <= set(statuses)


TRADING_FIELDS = {
    ("POST", "/v3/orders"): [
        "market", "side", "type", "timeInForce", "postOnly", "reduceOnly", "size", "price",
        "limitFee", "expiration", "clientId", "signature", "cancelId", "triggerPrice",
        "trailingPercent",
    ],
    ("POST", "/v3/withdrawals"): ["amount", "asset", "expiration", "clientId", "signature"],
    ("POST", "/v3/fast-withdrawals"): [
        "creditAsset", "creditAmount", "debitAmount", "slippageTolerance", "toAddress",
        "lpPositionId", "expiration", "clientId", "signature",
    ],
    ("POST", "/v3/accounts"): ["starkKey", "starkKeyYCoordinate"],
    ("PUT", "/v3/users"): [
        "email", "username", "userData", "isSharingUsername", "isSharingAddress", "country",
        "languageCode",
    ],
}  # fmt: skip
GOOD_VALUES = {
    "market": "BTC-USD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTT", "postOnly": True,
    "size": "0.001", "price": "1000", "limitFee": "0.001", "expiration": "2030-01-01T00:00:00.000Z",
    "clientId": "c1", "signature": "1" * 128, "amount": "1", "asset": "USDC",
    "creditAsset": "USDC", "creditAmount": "1", "debitAmount": "1", "lpPositionId": "2",
    "toAddress": "0x" + "a" * 40, "userData": "{}", "country": "CH", "languageCode": "en",
}  # fmt: skip


def test_garbage_in_signed_trading_bodies_and_queries_never_gets_a_500(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]]
) -> None:
    _, data = member
    rng = random.Random(18)
    values: list[Any] = [
        None, True, 0, -1, 1e308, "", "x", "-1", "0", "1e5", "0.0000001", "NaN", "Infinity",
        "9" * 40, "2021-13-45", "f" * 128, "g" * 128, [], {}, [1], {"a": 1}, "²", "1_000",
    ]  # fmt: skip
    statuses = []
    for _ in range(150):
        (method, path), fields = rng.choice(list(TRADING_FIELDS.items()))
        body = {f: GOOD_VALUES.get(f, "1") for f in fields if rng.random() < 0.8}
        for name in rng.sample(fields, rng.randint(1, min(3, len(fields)))):
            body[name] = rng.choice(values)
        text = compact(body)
        response = requests.request(
            method,
            emulator.url + path,
            data=text.encode(),
            headers=api_key_headers(data["apiKey"], method, path, text),
            timeout=10,
        )
        statuses.append(response.status_code)
        assert response.status_code < 500, (method, path, text, response.text)
        if response.status_code >= 400:
            errors_of(response)
    for _ in range(60):
        path = rng.choice(
            ["/v3/orders", "/v3/positions", "/v3/markets", "/v3/fast-withdrawals", "/v3/fills",
             "/v3/orders/client/x", "/v3/orders/" + str(rng.choice(values))]
        )  # fmt: skip
        names = ["market", "status", "side", "type", "limit", "createdBeforeOrAt",
                 "returnLatestOrders", "creditAsset", "creditAmount", "debitAmount"]  # fmt: skip
        query = "&".join(
            f"{rng.choice(names)}={rng.choice(values)}" for _ in range(rng.randint(1, 3))
        )
        target = f"{path}?{query}"
        response = requests.get(
            emulator.url + target,
            headers=api_key_headers(data["apiKey"], "GET", target),
            timeout=10,
        )
        statuses.append(response.status_code)
        assert response.status_code < 500, (target, response.text)
    assert 400 in statuses
