"""The dYdX client against the sandbox's v3 emulator: onboarding, API keys, faults and rate limits."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import CHAIN_ID, Admin, ClientKit, KeySigner, fresh_signer
from dydx3 import Client
from dydx3.helpers.db import get_account_id
from eth_keys import keys

from provisioner.clients.dydx import (
    AlreadyOnboarded,
    ApiCredentials,
    DydxError,
    OnboardedAccount,
    StarkKeyPair,
)
from provisioner.clients.ratelimit import RateLimiter
from provisioner.clients.retry import RetryPolicy
from provisioner.errors import ProvisionerError
from provisioner.sandbox.control import SandboxInfo
from provisioner.sandbox.dev_accounts import SANDBOX_OPERATOR_ADDRESS, registration_digest

pytestmark = pytest.mark.sandbox

MakeClient = Callable[..., ClientKit]


def onboarded(kit: ClientKit) -> tuple[KeySigner, StarkKeyPair, OnboardedAccount, ApiCredentials]:
    signer = fresh_signer()
    stark = kit.client.derive_stark_key(signer)
    account, creds = kit.client.onboard(signer, stark)
    return signer, stark, account, creds


class VirtualTime:
    """Wall clock plus the time we pretended to sleep: waits are recorded, not slept."""

    def __init__(self) -> None:
        self.skew = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return time.time() + self.skew

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.skew += seconds


def test_onboarding_and_api_key_lifecycle(sandbox: SandboxInfo, make_client: MakeClient) -> None:
    kit = make_client(sandbox.api_url)
    dydx = kit.client
    signer = fresh_signer()
    assert dydx.user_exists(signer.address) is False

    stark = dydx.derive_stark_key(signer)
    account, creds = dydx.onboard(signer, stark)
    assert dydx.user_exists(signer.address) is True
    assert account.account_id == get_account_id(signer.address)
    assert account.stark_key == stark.public_key and account.position_id > 0
    assert dydx.recover_default_credentials(signer) == creds
    assert dydx.get_account(signer.address, creds) == account

    assert dydx.list_api_keys(signer.address, creds) == {creds.key}
    extra = dydx.create_api_key(signer)
    assert extra.key != creds.key
    assert dydx.list_api_keys(signer.address, creds) == {creds.key, extra.key}
    assert dydx.list_api_keys(signer.address, extra) == {creds.key, extra.key}  # the new key works
    with pytest.raises(ProvisionerError, match="default key"):
        dydx.delete_api_key(signer, creds.key, default_key=creds.key)
    dydx.delete_api_key(signer, extra.key, default_key=creds.key)
    assert dydx.list_api_keys(signer.address, creds) == {creds.key}

    assert dydx.stats == {
        "GET /v3/users/exists": 2,
        "POST /v3/onboarding": 1,
        "GET /v3/accounts/:id": 1,
        "GET /v3/api-keys": 4,
        "POST /v3/api-keys": 1,
        "DELETE /v3/api-keys": 1,
    }
    assert kit.log.lines == []


def test_onboarding_an_existing_user_is_refused_by_dydx_without_a_question_first(
    sandbox: SandboxInfo, make_client: MakeClient
) -> None:
    kit = make_client(sandbox.api_url)
    signer, stark, _, _ = onboarded(kit)
    with pytest.raises(AlreadyOnboarded, match="409 User already exists") as refused:
        kit.client.onboard(signer, stark)
    assert refused.value.status == 409
    assert kit.client.stats == {"POST /v3/onboarding": 2}  # no users/exists: the 409 is the check


def test_registration_signature_is_the_operators(
    sandbox: SandboxInfo, make_client: MakeClient
) -> None:
    kit = make_client(sandbox.api_url)
    signer, stark, _, creds = onboarded(kit)
    signature = kit.client.registration_signature(signer.address, creds)
    assert re.fullmatch(r"0x[0-9a-fA-F]{130}", signature)
    raw = bytes.fromhex(signature[2:])
    assert raw[64] in (27, 28)
    recovered = keys.Signature(raw[:64] + bytes([raw[64] - 27])).recover_public_key_from_msg_hash(
        registration_digest(signer.address, stark.public_key)
    )
    assert recovered.to_checksum_address() == SANDBOX_OPERATOR_ADDRESS


def test_a_converged_account_costs_one_request(
    sandbox: SandboxInfo, make_client: MakeClient
) -> None:
    signer, _, _, creds = onboarded(make_client(sandbox.api_url))
    observer = make_client(sandbox.api_url).client
    assert observer.list_api_keys(signer.address, creds) == {creds.key}
    assert observer.stats == {"GET /v3/api-keys": 1}
    assert observer.request_count == 1


def test_one_client_serves_many_threads(sandbox: SandboxInfo, make_client: MakeClient) -> None:
    kit = make_client(sandbox.api_url)
    accounts = [onboarded(kit) for _ in range(3)]
    before = kit.client.stats.get("GET /v3/api-keys", 0)

    def observe(i: int) -> frozenset[str]:
        signer, _, _, creds = accounts[i % 3]
        return kit.client.list_api_keys(signer.address, creds)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(observe, range(48)))
    assert answers == [frozenset({accounts[i % 3][3].key}) for i in range(48)]
    assert kit.client.stats["GET /v3/api-keys"] - before == 48


def test_stored_credentials_work_with_dydx3(sandbox: SandboxInfo, make_client: MakeClient) -> None:
    signer, stark, account, creds = onboarded(make_client(sandbox.api_url))
    bot = Client(
        host=sandbox.api_url,
        network_id=CHAIN_ID,
        api_key_credentials=creds.as_dydx3(),
        stark_private_key=stark.private_key_hex,
        default_ethereum_address=signer.address,
    )
    answer = bot.private.get_account().data["account"]
    assert answer["id"] == account.account_id
    assert int(answer["starkKey"], 16) == stark.public_key


def test_refusals_carry_status_and_message_but_no_secret(
    sandbox: SandboxInfo, make_client: MakeClient
) -> None:
    kit = make_client(sandbox.api_url)
    signer, stark, _, creds = onboarded(kit)
    with pytest.raises(DydxError) as again:
        kit.client.onboard(signer, stark)
    assert again.value.status == 409 and again.value.msg == "User already exists"
    assert str(again.value) == "dYdX POST /v3/onboarding: 409 User already exists"

    canary = ApiCredentials(
        key=creds.key,
        secret="Q0FOQVJZLWNhbmFyeS1DQU5BUlktY2FuYXJ5LUNB",
        passphrase="canary-passphrase-1",
    )
    with pytest.raises(DydxError) as refused:
        kit.client.list_api_keys(signer.address, canary)
    assert refused.value.status == 401
    shown = str(refused.value) + repr(refused.value) + kit.log.text()
    for secret in (
        canary.secret,
        canary.passphrase,
        creds.secret,
        creds.passphrase,
        stark.private_key_hex,
    ):
        assert secret not in shown
    assert kit.client.stats["POST /v3/onboarding"] == 2  # a refusal is not retried


def test_reads_are_retried_through_errors_and_dropped_connections(
    sandbox: SandboxInfo, make_client: MakeClient, faults: Admin
) -> None:
    kit = make_client(sandbox.api_url)
    signer, _, _, creds = onboarded(kit)
    faults.fault(method="GET", path="/v3/users/exists", error_rate=1, status=503, times=2)
    faults.fault(method="GET", path="/v3/api-keys", drop_rate=1, times=1)
    assert kit.client.user_exists(signer.address) is True
    assert kit.client.list_api_keys(signer.address, creds) == {creds.key}
    assert kit.client.stats["GET /v3/users/exists"] == 3
    assert kit.client.stats["GET /v3/api-keys"] == 2
    retries = [line for line in kit.log.lines if "; retry " in line]
    assert len(retries) == 3
    assert "dYdX GET /v3/users/exists: HTTP 503; retry 1/3" in retries[0]
    assert "dYdX GET /v3/api-keys: connection dropped" in retries[2]


def test_a_read_gives_up_after_max_attempts(
    sandbox: SandboxInfo, make_client: MakeClient, faults: Admin
) -> None:
    kit = make_client(sandbox.api_url)
    faults.fault(method="GET", path="/v3/users/exists", error_rate=1, status=502)
    with pytest.raises(DydxError) as caught:
        kit.client.user_exists(fresh_signer().address)
    assert caught.value.status == 502 and caught.value.ambiguous
    assert kit.client.stats == {"GET /v3/users/exists": 4}
    assert "giving up after 4 attempts" in kit.log.lines[-1]


@pytest.mark.parametrize(
    "fault", [{"error_rate": 1, "status": 500}, {"drop_rate": 1}], ids=["500", "drop"]
)
def test_creating_an_api_key_is_not_retried_on_ambiguous_failures(
    sandbox: SandboxInfo, make_client: MakeClient, faults: Admin, fault: dict[str, object]
) -> None:
    kit = make_client(sandbox.api_url)
    signer, _, _, creds = onboarded(kit)
    faults.fault(method="POST", path="/v3/api-keys", times=1, **fault)
    with pytest.raises(DydxError) as caught:
        kit.client.create_api_key(signer)
    assert caught.value.ambiguous
    assert kit.client.stats["POST /v3/api-keys"] == 1
    # the caller's recovery: list and compare
    assert kit.client.list_api_keys(signer.address, creds) == {creds.key}


def test_onboarding_after_a_500_checks_and_repeats(
    sandbox: SandboxInfo, make_client: MakeClient, faults: Admin
) -> None:
    kit = make_client(sandbox.api_url)
    signer = fresh_signer()
    stark = kit.client.derive_stark_key(signer)
    faults.fault(method="POST", path="/v3/onboarding", error_rate=1, status=500, times=1)
    account, creds = kit.client.onboard(signer, stark)
    assert account.stark_key == stark.public_key
    assert kit.client.list_api_keys(signer.address, creds) == {creds.key}
    assert kit.client.stats["POST /v3/onboarding"] == 2
    assert kit.client.stats["GET /v3/users/exists"] == 1
    assert "checking whether the user exists" in kit.log.text()


def test_onboarding_after_a_timeout_checks_before_repeating(
    sandbox: SandboxInfo, make_client: MakeClient, faults: Admin
) -> None:
    # the emulator holds the first request 1.5 s; we stop waiting at 0.5 s and retry at 2 s, so
    # whether that request created the user or not, the second attempt cannot race it
    kit = make_client(
        sandbox.api_url, timeout=0.5, retry=RetryPolicy(max_attempts=3, base_delay=1.5, jitter=0)
    )
    signer = fresh_signer()
    stark = kit.client.derive_stark_key(signer)
    faults.fault(method="POST", path="/v3/onboarding", latency_ms=1500, times=1)
    account, creds = kit.client.onboard(signer, stark)
    assert "no answer in time; checking whether the user exists" in kit.log.text()
    assert creds == kit.client.recover_default_credentials(signer)
    assert account == kit.client.get_account(signer.address, creds)
    assert account.stark_key == stark.public_key


def someone_else_onboards(api_url: str, signer: KeySigner, stark: StarkKeyPair) -> None:
    """What a request whose answer we lost did: dydx3 onboards the same wallet."""
    Client(
        host=api_url, network_id=CHAIN_ID, eth_private_key=signer.private_key
    ).onboarding.create_user(
        stark_public_key=stark.public_key_hex, stark_public_key_y_coordinate=stark.public_key_y_hex
    )


def test_onboarding_answered_500_after_creating_the_user_is_adopted(
    sandbox: SandboxInfo, make_client: MakeClient, faults: Admin
) -> None:
    kit = make_client(sandbox.api_url)
    signer = fresh_signer()
    stark = kit.client.derive_stark_key(signer)
    someone_else_onboards(sandbox.api_url, signer, stark)
    faults.fault(method="POST", path="/v3/onboarding", error_rate=1, status=500, times=1)
    signatures_before = signer.calls
    account, creds = kit.client.onboard(signer, stark)
    assert "before the answer was lost" in kit.log.text()
    assert signer.calls == signatures_before + 1  # the default key came from the same signature
    assert creds == kit.client.recover_default_credentials(signer)
    assert account.stark_key == stark.public_key
    assert account.account_id == get_account_id(signer.address)
    assert kit.client.stats == {
        "POST /v3/onboarding": 1,
        "GET /v3/users/exists": 1,
        "GET /v3/accounts/:id": 1,
    }


def test_adopting_a_user_with_another_stark_key_is_refused(
    sandbox: SandboxInfo, make_client: MakeClient, faults: Admin
) -> None:
    kit = make_client(sandbox.api_url)
    signer = fresh_signer()
    stark = kit.client.derive_stark_key(signer)
    other = StarkKeyPair.from_private_key(stark.private_key // 3)
    someone_else_onboards(sandbox.api_url, signer, other)
    faults.fault(method="POST", path="/v3/onboarding", error_rate=1, status=503, times=1)
    with pytest.raises(
        DydxError, match=f"has STARK key {other.public_key_hex}, not {stark.public_key_hex}"
    ):
        kit.client.onboard(signer, stark)


def test_deleting_a_key_that_an_unanswered_attempt_deleted_is_not_an_error(
    sandbox: SandboxInfo, make_client: MakeClient, faults: Admin
) -> None:
    kit = make_client(sandbox.api_url)
    signer, _, _, creds = onboarded(kit)
    extra = kit.client.create_api_key(signer)
    # our first attempt "deleted it and lost the answer": someone deletes it, our request gets a 500
    Client(
        host=sandbox.api_url, network_id=CHAIN_ID, eth_private_key=signer.private_key
    ).eth_private.delete_api_key(extra.key)
    faults.fault(method="DELETE", path="/v3/api-keys", error_rate=1, status=500, times=1)
    kit.client.delete_api_key(signer, extra.key, default_key=creds.key)
    assert kit.client.stats["DELETE /v3/api-keys"] == 2
    assert kit.client.list_api_keys(signer.address, creds) == {creds.key}


def test_deleting_an_unknown_key_is_an_error(sandbox: SandboxInfo, make_client: MakeClient) -> None:
    kit = make_client(sandbox.api_url)
    signer, _, _, creds = onboarded(kit)
    with pytest.raises(DydxError) as caught:
        kit.client.delete_api_key(
            signer, "00000000-0000-0000-0000-000000000000", default_key=creds.key
        )
    assert caught.value.status == 404
    assert kit.client.stats["DELETE /v3/api-keys"] == 1


def test_429_waits_for_retry_after_in_milliseconds(
    sandbox: SandboxInfo, make_client: MakeClient, faults: Admin
) -> None:
    virtual = VirtualTime()
    kit = make_client(
        sandbox.api_url,
        retry=RetryPolicy(sleep=virtual.sleep, clock=virtual.clock),
        limiter=RateLimiter(clock=virtual.clock, sleep=virtual.sleep),
    )
    faults.fault(method="GET", path="/v3/users/exists", burst_429=2)
    assert kit.client.user_exists(fresh_signer().address) is False
    assert kit.client.stats == {"GET /v3/users/exists": 3}
    # the emulator's burst answers Retry-After: 10000 (ms, the GET window): 10 s, not 10 000 s, not 10 ms
    assert virtual.sleeps[0] == pytest.approx(10.0)
    assert sum(virtual.sleeps) == pytest.approx(20.0 + 2 * 0.25, abs=0.5)
    assert sum("HTTP 429" in line for line in kit.log.lines) == 2


def test_a_write_is_retried_after_429(
    sandbox: SandboxInfo, make_client: MakeClient, faults: Admin
) -> None:
    virtual = VirtualTime()
    kit = make_client(
        sandbox.api_url,
        retry=RetryPolicy(sleep=virtual.sleep, clock=virtual.clock),
        limiter=RateLimiter(clock=virtual.clock, sleep=virtual.sleep),
    )
    signer, _, _, creds = onboarded(kit)
    faults.fault(method="POST", path="/v3/api-keys", burst_429=1)
    extra = kit.client.create_api_key(signer)  # 429: the server did nothing, so repeating is safe
    assert kit.client.stats["POST /v3/api-keys"] == 2
    assert virtual.sleeps[0] == pytest.approx(60.0)
    assert kit.client.list_api_keys(signer.address, creds) == {creds.key, extra.key}


def test_real_limits_are_waited_for_not_hit(strict_emulator: str, make_client: MakeClient) -> None:
    """Someone else spent 170 of the 175 reads of this window; we learn it from the headers and wait."""
    other = make_client(strict_emulator, limiter=RateLimiter.for_mode("relaxed")).client
    address = fresh_signer().address
    for _ in range(170):
        other.user_exists(address)
    kit = make_client(strict_emulator, retry=RetryPolicy(max_attempts=1))
    started = time.monotonic()
    for _ in range(10):
        assert kit.client.user_exists(address) is False
    assert kit.client.stats == {
        "GET /v3/users/exists": 10
    }  # max_attempts=1: a 429 would have raised
    assert any("rate limit: waiting" in line for line in kit.log.lines)
    assert time.monotonic() - started > 1.0
