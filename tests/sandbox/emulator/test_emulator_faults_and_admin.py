"""Injected faults appear as configured; the admin surface resets, counts, and is off by default."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import time
from typing import Any

import pytest
import requests
from dydx3.errors import DydxApiError
from support.emulator import EmulatorProcess, first_msg, fresh_wallet, onboard

from provisioner.sandbox.emulator import errors

pytestmark = pytest.mark.sandbox


def _time(emulator: EmulatorProcess) -> requests.Response:
    return requests.get(f"{emulator.url}/v3/time", timeout=10)


def _add(emulator: EmulatorProcess, rule: dict[str, Any]) -> None:
    response = emulator.admin("POST", "/admin/faults", rule)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("status", [500, 502, 503])
def test_error_rate_one_answers_the_configured_status(
    clean_faults: EmulatorProcess, status: int
) -> None:
    _add(clean_faults, {"method": "GET", "path": "/v3/time", "error_rate": 1, "status": status})
    response = _time(clean_faults)
    assert (response.status_code, first_msg(response)) == (status, errors.INJECTED_FAULT)
    assert requests.get(
        f"{clean_faults.url}/v3/users/exists?ethereumAddress=0x" + "0" * 40, timeout=5
    ).ok


def test_faults_reach_the_official_client_and_stop_after_times(
    clean_faults: EmulatorProcess,
) -> None:
    _add(clean_faults, {"path": "/v3/users/exists", "error_rate": 1, "status": 502, "times": 2})
    client = clean_faults.client(fresh_wallet(clean_faults.rpc_url, eth_wei=0))
    for _ in range(2):
        with pytest.raises(DydxApiError) as caught:
            client.public.check_if_user_exists("0x" + "1" * 40)
        assert caught.value.status_code == 502
    assert client.public.check_if_user_exists("0x" + "1" * 40).data["exists"] is False


def test_latency(clean_faults: EmulatorProcess) -> None:
    _add(clean_faults, {"path": "/v3/time", "latency_ms": 300})
    started = time.monotonic()
    assert _time(clean_faults).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_dropped_connection(clean_faults: EmulatorProcess) -> None:
    _add(clean_faults, {"path": "/v3/time", "drop_rate": 1, "times": 1})
    with pytest.raises(requests.ConnectionError):
        _time(clean_faults)
    assert _time(clean_faults).status_code == 200


def test_burst_of_429s(clean_faults: EmulatorProcess) -> None:
    _add(clean_faults, {"path": "/v3/time", "burst_429": 3})
    for _ in range(3):
        response = _time(clean_faults)
        assert (response.status_code, first_msg(response)) == (429, errors.RATE_LIMITED)
        assert response.headers["RateLimit-Remaining"] == "0"
        assert (
            int(response.headers["Retry-After"]) > 0
            and int(response.headers["RateLimit-Reset"]) > 0
        )
    assert _time(clean_faults).status_code == 200


def test_rules_match_by_method_and_path_prefix(clean_faults: EmulatorProcess) -> None:
    _add(clean_faults, {"method": "POST", "path": "/v3/", "error_rate": 1, "status": 503})
    assert _time(clean_faults).status_code == 200
    response = requests.post(f"{clean_faults.url}/v3/onboarding", json={}, timeout=5)
    assert response.status_code == 503
    listed = clean_faults.admin("GET", "/admin/faults").json()["rules"]
    assert [(r["method"], r["path"], r["status"]) for r in listed] == [("POST", "/v3/", 503)]
    assert clean_faults.admin("DELETE", "/admin/faults").json() == {"rules": []}
    assert requests.post(f"{clean_faults.url}/v3/onboarding", json={}, timeout=5).status_code != 503


@pytest.mark.parametrize(
    "rule",
    [
        {"error_rate": 2},
        {"status": 200},
        {"path": "v3"},
        {"burst_429": -1},
        {"bogus": 1},
        [1],
        {"latency_ms": "x"},
    ],
)
def test_bad_fault_rules_are_refused(clean_faults: EmulatorProcess, rule: Any) -> None:
    response = clean_faults.admin("POST", "/admin/faults", rule)
    assert response.status_code == 400 and "errors" in response.json()
    assert clean_faults.admin("GET", "/admin/faults").json() == {"rules": []}


def test_stats_count_requests_per_route_and_writes(clean_faults: EmulatorProcess) -> None:
    assert clean_faults.admin("DELETE", "/admin/stats").json() == {
        "requests": {},
        "writes": 0,
        "total": 0,
    }
    wallet = fresh_wallet(clean_faults.rpc_url)
    client, data = onboard(clean_faults, wallet)
    client.private.get_account()
    client.private.get_account()
    stats = clean_faults.admin("GET", "/admin/stats").json()
    assert stats == {
        "requests": {"GET /v3/accounts/{id}": 2, "POST /v3/onboarding": 1},
        "writes": 1,
        "total": 3,
    }


def test_reset_forgets_users_and_keys(start_emulator: Any) -> None:
    emulator: EmulatorProcess = start_emulator("--admin", "--rate-limits", "relaxed", name="reset")
    wallet = fresh_wallet(emulator.rpc_url)
    client, data = onboard(emulator, wallet)
    _add(emulator, {"path": "/v3/time", "error_rate": 1})
    assert emulator.admin("POST", "/admin/reset").json() == {"reset": True}
    assert client.public.check_if_user_exists(wallet.address).data["exists"] is False
    with pytest.raises(DydxApiError) as caught:
        client.private.get_user()
    assert caught.value.status_code == 401
    assert emulator.admin("GET", "/admin/faults").json() == {"rules": []}
    assert emulator.admin("GET", "/admin/stats").json()["total"] == 2
    # the same wallet onboards again, with the same default key and a new position
    _, again = onboard(emulator, wallet)
    assert again["apiKey"] == data["apiKey"]
    assert int(again["account"]["positionId"]) > int(data["account"]["positionId"])


def test_confirmations_can_change_at_run_time(start_emulator: Any) -> None:
    emulator: EmulatorProcess = start_emulator(
        "--admin", "--confirmations", "7", name="confirmations"
    )
    assert emulator.admin("GET", "/admin/chain").json()["confirmations"] == 7
    assert (
        emulator.admin("POST", "/admin/confirmations", {"confirmations": 3}).json()["confirmations"]
        == 3
    )
    assert emulator.admin("POST", "/admin/confirmations", {"confirmations": -1}).status_code == 400


def test_admin_surface_is_off_unless_enabled(start_emulator: Any) -> None:
    plain: EmulatorProcess = start_emulator("--rate-limits", "relaxed", name="plain")
    for method, path in [
        ("GET", "/admin/stats"),
        ("POST", "/admin/reset"),
        ("POST", "/admin/faults"),
    ]:
        response = plain.admin(method, path, {})
        assert response.status_code == 404 and first_msg(response) == errors.NOT_FOUND
