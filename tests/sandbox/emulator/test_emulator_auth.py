"""Each authentication check fails with v3's status and message (errors.py lists the choices)."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

from typing import Any

import pytest
import requests
from dydx3.errors import DydxApiError
from support.emulator import (
    EmulatorProcess,
    Wallet,
    api_key_headers,
    eth_private_headers,
    first_msg,
    fresh_wallet,
    now_iso,
    onboard,
    onboarding_signature,
)

from provisioner.sandbox.emulator import errors

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def member(emulator: EmulatorProcess) -> tuple[Wallet, dict[str, Any]]:
    """An onboarded wallet and its onboarding response (with its STARK keys under "stark")."""
    wallet = fresh_wallet(emulator.rpc_url)
    _, data = onboard(emulator, wallet)
    return wallet, data


def _onboarding_body(stark: dict[str, str]) -> dict[str, str]:
    return {
        "starkKey": stark["public_key"],
        "starkKeyYCoordinate": stark["public_key_y_coordinate"],
    }


def _post_onboarding(
    emulator: EmulatorProcess, signature: str, address: str, body: Any
) -> requests.Response:
    headers = {"DYDX-SIGNATURE": signature, "DYDX-ETHEREUM-ADDRESS": address}
    return requests.post(f"{emulator.url}/v3/onboarding", json=body, headers=headers, timeout=10)


# -- onboarding ----------------------------------------------------------------------------
def test_onboarding_signed_by_another_key_is_refused(emulator: EmulatorProcess) -> None:
    victim, attacker = fresh_wallet(emulator.rpc_url), fresh_wallet(emulator.rpc_url)
    stark = emulator.client(victim).onboarding.derive_stark_key()
    signature = onboarding_signature(attacker.key, attacker.address)
    r = _post_onboarding(emulator, signature, victim.address, _onboarding_body(stark))
    assert (r.status_code, first_msg(r)) == (400, errors.INVALID_ONBOARDING_SIGNATURE)
    assert (
        emulator.client(victim).public.check_if_user_exists(victim.address).data["exists"] is False
    )


def test_onboarding_signed_for_mainnet_is_refused_on_sepolia(emulator: EmulatorProcess) -> None:
    wallet = fresh_wallet(emulator.rpc_url)
    stark = emulator.client(wallet).onboarding.derive_stark_key()
    signature = onboarding_signature(wallet.key, wallet.address, chain_id=1)  # with onlySignOn
    r = _post_onboarding(emulator, signature, wallet.address, _onboarding_body(stark))
    assert (r.status_code, first_msg(r)) == (400, errors.INVALID_ONBOARDING_SIGNATURE)


@pytest.mark.parametrize(
    "signature", ["", "0x1234", "0x" + "zz" * 66, "0x" + "11" * 64 + "1f00", "0x" + "00" * 66]
)
def test_onboarding_with_a_malformed_signature_is_refused(
    emulator: EmulatorProcess, signature: str
) -> None:
    wallet = fresh_wallet(emulator.rpc_url, eth_wei=0)
    stark = emulator.client(wallet).onboarding.derive_stark_key()
    r = _post_onboarding(emulator, signature, wallet.address, _onboarding_body(stark))
    assert (r.status_code, first_msg(r)) == (400, errors.INVALID_ONBOARDING_SIGNATURE)


def test_second_onboarding_of_an_address_conflicts(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]]
) -> None:
    wallet, data = member
    with pytest.raises(DydxApiError) as caught:
        emulator.client(wallet).onboarding.create_user(
            stark_public_key=data["stark"]["public_key"],
            stark_public_key_y_coordinate=data["stark"]["public_key_y_coordinate"],
        )
    assert caught.value.status_code == 409
    assert caught.value.msg == {"errors": [{"msg": errors.USER_EXISTS}]}


def test_onboarding_with_another_users_stark_key_conflicts(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]]
) -> None:
    _, data = member
    newcomer = fresh_wallet(emulator.rpc_url)
    with pytest.raises(DydxApiError) as caught:
        emulator.client(newcomer).onboarding.create_user(
            stark_public_key=data["stark"]["public_key"],
            stark_public_key_y_coordinate=data["stark"]["public_key_y_coordinate"],
        )
    assert (caught.value.status_code, caught.value.msg["errors"][0]["msg"]) == (
        409,
        errors.STARK_KEY_IN_USE,
    )
    assert (
        emulator.client(newcomer).public.check_if_user_exists(newcomer.address).data["exists"]
        is False
    )


def test_wallet_without_history_is_refused_when_the_check_is_on(start_emulator: Any) -> None:
    strict_history = start_emulator(
        "--rate-limits", "relaxed", "--require-wallet-history", name="history"
    )
    empty = fresh_wallet(strict_history.rpc_url, eth_wei=0)
    with pytest.raises(DydxApiError) as caught:
        onboard(strict_history, empty)
    assert (caught.value.status_code, caught.value.msg["errors"][0]["msg"]) == (
        400,
        errors.NO_WALLET_HISTORY,
    )
    funded = fresh_wallet(strict_history.rpc_url, eth_wei=10**18)
    _, data = onboard(strict_history, funded)
    assert data["user"]["ethereumAddress"] == funded.address.lower()


# -- Ethereum-key requests -----------------------------------------------------------------
def _post_api_key(
    emulator: EmulatorProcess, headers: dict[str, str], path: str = "/v3/api-keys"
) -> requests.Response:
    return requests.post(f"{emulator.url}{path}", data="{}", headers=headers, timeout=10)


def test_eth_key_request_signed_correctly_passes(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]]
) -> None:
    wallet, _ = member
    r = _post_api_key(
        emulator, eth_private_headers(wallet.key, wallet.address, "POST", "/v3/api-keys")
    )
    assert r.status_code == 201, r.text
    key = r.json()["apiKey"]["key"]
    path = f"/v3/api-keys?apiKey={key}"
    headers = eth_private_headers(wallet.key, wallet.address, "DELETE", path)
    assert requests.delete(f"{emulator.url}{path}", headers=headers, timeout=10).json() == {
        "apiKey": key
    }


@pytest.mark.parametrize(
    "tamper",
    [
        "other signer",
        "other path",
        "other method",
        "other body",
        "stale",
        "future",
        "no timestamp",
        "no signature",
    ],
)
def test_eth_key_request_failing_a_check_is_unauthorized(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]], tamper: str
) -> None:
    wallet, _ = member
    signer = fresh_wallet(emulator.rpc_url, eth_wei=0) if tamper == "other signer" else wallet
    method, path, body, timestamp = "POST", "/v3/api-keys", "{}", now_iso()
    if tamper == "other path":
        path = "/v3/api-keys?x=1"
    elif tamper == "other method":
        method = "DELETE"
    elif tamper == "other body":
        body = '{"a":1}'
    elif tamper == "stale":
        timestamp = now_iso(-45)
    elif tamper == "future":
        timestamp = now_iso(+45)
    headers = eth_private_headers(signer.key, signer.address, method, path, body, timestamp)
    headers["DYDX-ETHEREUM-ADDRESS"] = wallet.address
    if tamper == "no timestamp":
        del headers["DYDX-TIMESTAMP"]
    if tamper == "no signature":
        del headers["DYDX-SIGNATURE"]
    r = _post_api_key(emulator, headers)
    expected = errors.STALE_TIMESTAMP if tamper in ("stale", "future") else errors.UNAUTHORIZED
    assert (r.status_code, first_msg(r)) == (401, expected)


def test_eth_key_request_of_an_unknown_user_is_not_found(emulator: EmulatorProcess) -> None:
    stranger = fresh_wallet(emulator.rpc_url, eth_wei=0)
    with pytest.raises(DydxApiError) as caught:
        emulator.client(stranger).eth_private.create_api_key()
    assert (caught.value.status_code, caught.value.msg["errors"][0]["msg"]) == (
        404,
        errors.USER_NOT_FOUND,
    )


# -- API-key (HMAC) requests ----------------------------------------------------------------
def _get_user(emulator: EmulatorProcess, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"{emulator.url}/v3/users", headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("urlsafe", "padded"), [(True, True), (True, False), (False, True), (False, False)]
)
def test_hmac_accepts_both_base64_alphabets_with_or_without_padding(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]], urlsafe: bool, padded: bool
) -> None:
    _, data = member
    headers = api_key_headers(data["apiKey"], "GET", "/v3/users", urlsafe=urlsafe, padded=padded)
    r = _get_user(emulator, headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("tamper", "status", "msg"),
    [
        ("passphrase", 401, errors.UNAUTHORIZED),
        ("secret", 401, errors.UNAUTHORIZED),
        ("path", 401, errors.UNAUTHORIZED),
        ("unknown key", 401, errors.API_KEY_NOT_FOUND),
        ("stale", 401, errors.STALE_TIMESTAMP),
        ("future", 401, errors.STALE_TIMESTAMP),
        ("garbage timestamp", 401, errors.STALE_TIMESTAMP),
        ("no passphrase", 401, errors.UNAUTHORIZED),
        ("no key", 401, errors.UNAUTHORIZED),
    ],
)
def test_hmac_request_failing_a_check_is_refused(
    emulator: EmulatorProcess,
    member: tuple[Wallet, dict[str, Any]],
    tamper: str,
    status: int,
    msg: str,
) -> None:
    _, data = member
    creds = dict(data["apiKey"])
    path, timestamp = "/v3/users", now_iso()
    if tamper == "secret":
        creds["secret"] = "A" * 40
    elif tamper == "path":
        path = "/v3/users?x=1"
    elif tamper == "stale":
        timestamp = now_iso(-31)
    elif tamper == "future":
        timestamp = now_iso(+31)
    elif tamper == "garbage timestamp":
        timestamp = "yesterday-ish"
    headers = api_key_headers(creds, "GET", path, timestamp=timestamp)
    if tamper == "passphrase":
        headers["DYDX-PASSPHRASE"] = "wrong-passphrase-000"
    elif tamper == "unknown key":
        headers["DYDX-API-KEY"] = "00000000-0000-0000-0000-000000000000"
    elif tamper == "no passphrase":
        del headers["DYDX-PASSPHRASE"]
    elif tamper == "no key":
        del headers["DYDX-API-KEY"]
    r = _get_user(emulator, headers)
    assert (r.status_code, first_msg(r)) == (status, msg)


def test_wrong_passphrase_through_the_official_client(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]]
) -> None:
    wallet, data = member
    creds = dict(data["apiKey"], passphrase="x" * 20)
    with pytest.raises(DydxApiError) as caught:
        emulator.client(wallet, api_key_credentials=creds).private.get_api_keys()
    assert caught.value.status_code == 401
    assert caught.value.msg == {"errors": [{"msg": errors.UNAUTHORIZED}]}


def test_a_deleted_key_no_longer_authenticates(
    emulator: EmulatorProcess, member: tuple[Wallet, dict[str, Any]]
) -> None:
    wallet, _ = member
    client = emulator.client(wallet)
    extra = client.eth_private.create_api_key().data["apiKey"]
    client.eth_private.delete_api_key(extra["key"])
    with pytest.raises(DydxApiError) as caught:
        emulator.client(wallet, api_key_credentials=extra).private.get_user()
    assert (caught.value.status_code, caught.value.msg["errors"][0]["msg"]) == (
        401,
        errors.API_KEY_NOT_FOUND,
    )


# -- API-key management rules ---------------------------------------------------------------
def test_twenty_keys_at_most_and_never_the_last_one_deleted(emulator: EmulatorProcess) -> None:
    wallet = fresh_wallet(emulator.rpc_url)
    client, data = onboard(emulator, wallet)
    default_key = data["apiKey"]["key"]
    with pytest.raises(DydxApiError) as caught:
        client.eth_private.delete_api_key(default_key)
    assert (caught.value.status_code, caught.value.msg["errors"][0]["msg"]) == (
        400,
        errors.LAST_API_KEY,
    )

    created = [client.eth_private.create_api_key().data["apiKey"]["key"] for _ in range(19)]
    with pytest.raises(DydxApiError) as caught:
        client.eth_private.create_api_key()
    assert (caught.value.status_code, caught.value.msg["errors"][0]["msg"]) == (
        400,
        errors.TOO_MANY_API_KEYS,
    )
    assert len(client.private.get_api_keys().data["apiKeys"]) == 20

    with pytest.raises(DydxApiError) as caught:
        client.eth_private.delete_api_key("11111111-2222-3333-4444-555555555555")
    assert (caught.value.status_code, caught.value.msg["errors"][0]["msg"]) == (
        404,
        errors.API_KEY_NOT_FOUND,
    )

    for key in created:
        client.eth_private.delete_api_key(key)
    assert client.private.get_api_keys().data == {"apiKeys": [{"key": default_key}]}
