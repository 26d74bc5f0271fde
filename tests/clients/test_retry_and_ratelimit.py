"""The retry policy and the client-side rate limiter, on a fake clock: no network, no real sleeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from provisioner.clients.ratelimit import Bucket, Limit, RateLimiter, RateLimits
from provisioner.clients.retry import Retryability, RetryPolicy, classify
from provisioner.clients.transport import TransportError

ALICE = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"
BOB = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


@dataclass
class FakeClock:
    now: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class HttpError(Exception):
    def __init__(
        self, status: int, retry_after: float | None = None, retry_at: float | None = None
    ) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        self.retry_at = retry_at


def failing(*errors: Exception, result: str = "ok") -> tuple[Callable[[], str], list[int]]:
    """A function raising ``errors`` in turn, then returning ``result``; and its call counter."""
    calls = [0]

    def fn() -> str:
        calls[0] += 1
        if calls[0] <= len(errors):
            raise errors[calls[0] - 1]
        return result

    return fn, calls


def policy(clock: FakeClock, **kwargs: object) -> RetryPolicy:
    settings: dict[str, object] = {
        "max_attempts": 5,
        "base_delay": 0.5,
        "max_delay": 4.0,
        "jitter": 0.0,
    }
    settings.update(kwargs)
    return RetryPolicy(sleep=clock.sleep, clock=clock, **settings)  # type: ignore[arg-type]


def refused() -> TransportError:
    return TransportError("connection refused", maybe_sent=False)


def connect_timeout() -> TransportError:
    return TransportError("connect timeout", maybe_sent=False, timeout=True)


def read_timeout() -> TransportError:
    return TransportError("no answer in time", maybe_sent=True, timeout=True)


def dropped() -> TransportError:
    return TransportError("connection dropped (ProtocolError)", maybe_sent=True)


# ---- retry


def test_backoff_doubles_and_is_capped() -> None:
    clock = FakeClock()
    fn, calls = failing(*[HttpError(503)] * 7)
    with pytest.raises(HttpError):
        policy(clock, max_attempts=7).call(fn, idempotent=True, describe="x")
    assert calls[0] == 7
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999, 1.0])
def test_jitter_stays_within_its_fraction_below_the_capped_delay(draw: float) -> None:
    p = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=0.4, random=lambda: draw)
    for retry, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delay = p.backoff(retry)
        assert 0.6 * full - 1e-9 <= delay <= full
        assert delay == pytest.approx(full * (1 - 0.4 * draw))


def test_jitter_spreads_real_random_draws() -> None:
    p = RetryPolicy(base_delay=1.0, max_delay=1.0, jitter=0.5)
    draws = {p.backoff(1) for _ in range(200)}
    assert all(0.5 <= d <= 1.0 for d in draws)
    assert len(draws) > 100


def test_retry_after_from_the_server_is_honoured_even_beyond_max_delay() -> None:
    clock = FakeClock()
    # v3's Retry-After: 12500 (ms), converted by the client to seconds
    fn, calls = failing(HttpError(429, retry_after=12.5))
    assert policy(clock).call(fn, idempotent=False, describe="x") == "ok"
    assert clock.sleeps == [12.5]


def test_ratelimit_reset_epoch_is_honoured_when_there_is_no_retry_after() -> None:
    clock = FakeClock()
    fn, _ = failing(HttpError(429, retry_at=clock.now + 3.25))
    policy(clock).call(fn, idempotent=False, describe="x")
    assert clock.sleeps == [pytest.approx(3.25)]


def test_429_without_a_hint_backs_off() -> None:
    clock = FakeClock()
    fn, _ = failing(HttpError(429), HttpError(429))
    policy(clock).call(fn, idempotent=False, describe="x")
    assert clock.sleeps == [0.5, 1.0]


def test_a_server_delay_beyond_the_limit_is_not_waited_for() -> None:
    clock = FakeClock()
    lines: list[str] = []
    fn, calls = failing(HttpError(429, retry_after=3600.0))
    with pytest.raises(HttpError):
        policy(clock, max_server_delay=120.0).call(
            fn, idempotent=True, describe="x", log=lines.append
        )
    assert calls[0] == 1 and clock.sleeps == []
    assert "not waiting" in lines[0]


@pytest.mark.parametrize(
    "error",
    [read_timeout(), dropped(), TimeoutError(), HttpError(500)],
    ids=["read-timeout", "dropped", "builtin-timeout", "500"],
)
def test_ambiguous_failures_are_not_retried_for_non_idempotent_calls(error: Exception) -> None:
    clock = FakeClock()
    fn, calls = failing(error)
    with pytest.raises(type(error)):
        policy(clock).call(fn, idempotent=False, describe="x")
    assert calls[0] == 1 and clock.sleeps == []


@pytest.mark.parametrize(
    "error",
    [read_timeout(), dropped(), HttpError(502), HttpError(503)],
    ids=["read-timeout", "dropped", "502", "503"],
)
def test_ambiguous_failures_are_retried_for_idempotent_calls(error: Exception) -> None:
    clock = FakeClock()
    fn, calls = failing(error, error)
    assert policy(clock).call(fn, idempotent=True, describe="x") == "ok"
    assert calls[0] == 3


@pytest.mark.parametrize(
    "error", [refused(), connect_timeout()], ids=["refused", "connect-timeout"]
)
def test_requests_that_never_left_are_retried_even_when_not_idempotent(error: Exception) -> None:
    clock = FakeClock()
    fn, calls = failing(error)
    assert policy(clock).call(fn, idempotent=False, describe="x") == "ok"
    assert calls[0] == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_client_errors_are_never_retried(status: int) -> None:
    clock = FakeClock()
    fn, calls = failing(HttpError(status))
    with pytest.raises(HttpError):
        policy(clock).call(fn, idempotent=True, describe="x")
    assert calls[0] == 1


def test_other_exceptions_are_never_retried() -> None:
    fn, calls = failing(ValueError("bug"))
    with pytest.raises(ValueError):
        policy(FakeClock()).call(fn, idempotent=True, describe="x")
    assert calls[0] == 1


def test_every_retry_is_logged_and_the_last_error_is_raised_unchanged() -> None:
    clock = FakeClock()
    lines: list[str] = []
    last = HttpError(503)
    fn, calls = failing(HttpError(503), HttpError(429, retry_after=0.25), last)
    with pytest.raises(HttpError) as caught:
        policy(clock, max_attempts=3).call(
            fn, idempotent=True, describe="dYdX GET /v3/users/exists", log=lines.append
        )
    assert caught.value is last
    assert lines == [
        "dYdX GET /v3/users/exists: HTTP 503; retry 1/2 in 0.50s",
        "dYdX GET /v3/users/exists: HTTP 429 (rate limited); retry 2/2 in 0.25s",
        "dYdX GET /v3/users/exists: HTTP 503; giving up after 3 attempts",
    ]


def test_log_lines_carry_no_urls() -> None:
    lines: list[str] = []
    secret_url = "http://127.0.0.1:9/v3/api-keys?apiKey=canary-canary-canary"
    fn, _ = failing(TimeoutError(f"Read timed out. (url: {secret_url})"), read_timeout())
    policy(FakeClock()).call(fn, idempotent=True, describe="x", log=lines.append)
    assert lines == [
        "x: timeout (TimeoutError); retry 1/4 in 0.50s",
        "x: no answer in time; retry 2/4 in 1.00s",
    ]


def test_classify() -> None:
    assert classify(HttpError(429))[0] is Retryability.ALWAYS
    assert classify(HttpError(500))[0] is Retryability.IF_IDEMPOTENT
    assert classify(HttpError(404))[0] is Retryability.NEVER
    assert classify(refused())[0] is Retryability.ALWAYS
    assert classify(read_timeout())[0] is Retryability.IF_IDEMPOTENT
    assert classify(ConnectionRefusedError())[0] is Retryability.ALWAYS


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"base_delay": -1.0}, {"jitter": 1.5}, {"max_delay": -0.1}],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# ---- rate limiter


def limiter(
    clock: FakeClock, limits: RateLimits | None = None, margin: float = 0.25
) -> RateLimiter:
    return RateLimiter(limits or RateLimits.v3(), clock=clock, sleep=clock.sleep, margin=margin)


def send(rl: RateLimiter, bucket: Bucket, headers: dict[str, str] | None = None) -> None:
    with rl.slot(bucket) as slot:
        if headers is not None:
            slot.observe(headers)


def max_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def test_writes_wait_instead_of_exceeding_ten_per_minute() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    bucket = Bucket.of("POST", ALICE)
    sent = []
    for _ in range(25):
        send(rl, bucket)
        sent.append(clock.now)
    assert sent[:10] == [sent[0]] * 10
    assert sent[10] == pytest.approx(sent[0] + 60.25)
    assert max_in_any_window(sent, 60.0) == 10


def test_reads_wait_instead_of_exceeding_175_per_10_seconds() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    bucket = Bucket.of("GET", None)
    sent = []
    for _ in range(400):
        send(rl, bucket)
        sent.append(clock.now)
    assert max_in_any_window(sent, 10.0) == 175
    assert sent[-1] - sent[0] == pytest.approx(2 * 10.25)


def test_buckets_are_per_account_for_private_and_shared_for_public() -> None:
    assert Bucket.of("GET", ALICE) == Bucket.of("get", ALICE.lower())
    assert Bucket.of("GET", None) == Bucket.of("GET", "")
    assert Bucket.of("DELETE", ALICE) == Bucket.of("POST", ALICE)
    clock = FakeClock()
    rl = limiter(clock)
    for _ in range(10):
        send(rl, Bucket.of("POST", ALICE))
    send(rl, Bucket.of("POST", BOB))
    send(rl, Bucket.of("GET", ALICE))
    send(rl, Bucket.of("POST", None))
    assert clock.sleeps == []
    send(rl, Bucket.of("POST", ALICE))
    assert clock.sleeps == [pytest.approx(60.25)]


def test_server_remaining_zero_waits_for_its_reset() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    bucket = Bucket.of("GET", ALICE)
    reset_ms = int((clock.now + 4.0) * 1000)
    send(
        rl,
        bucket,
        {"RateLimit-Remaining": "0", "RateLimit-Limit": "175", "RateLimit-Reset": str(reset_ms)},
    )
    send(rl, bucket)
    assert clock.sleeps == [pytest.approx(4.25)]


def test_server_remaining_counts_down_with_our_own_requests() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    bucket = Bucket.of("GET", ALICE)
    reset_ms = int((clock.now + 8.0) * 1000)
    # others spent most of the window with the same account
    send(rl, bucket, {"ratelimit-remaining": "2", "ratelimit-reset": str(reset_ms)})
    send(rl, bucket)
    send(rl, bucket)
    assert clock.sleeps == []
    send(rl, bucket)
    assert clock.sleeps == [pytest.approx(8.25)]


def test_a_lower_server_limit_is_adopted() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    bucket = Bucket.of("POST", ALICE)
    send(rl, bucket, {"RateLimit-Limit": "3"})
    send(rl, bucket)
    send(rl, bucket)
    assert clock.sleeps == []
    send(rl, bucket)
    assert clock.sleeps == [pytest.approx(60.25)]


def test_a_higher_server_limit_is_adopted_too() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    bucket = Bucket.of("POST", ALICE)
    send(rl, bucket, {"RateLimit-Limit": "1000000000"})  # the sandbox's relaxed mode
    for _ in range(50):
        send(rl, bucket)
    assert clock.sleeps == []


def test_retry_after_on_a_429_blocks_the_bucket() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    bucket = Bucket.of("POST", ALICE)
    send(rl, bucket, {"Retry-After": "1500"})  # milliseconds
    send(rl, bucket)
    assert clock.sleeps == [pytest.approx(1.75)]


def test_an_answer_from_an_older_window_is_ignored() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    bucket = Bucket.of("GET", ALICE)
    new_reset = int((clock.now + 9.0) * 1000)
    old_reset = int((clock.now - 1.0) * 1000)
    send(rl, bucket, {"RateLimit-Remaining": "100", "RateLimit-Reset": str(new_reset)})
    send(rl, bucket, {"RateLimit-Remaining": "0", "RateLimit-Reset": str(old_reset)})
    send(rl, bucket)
    assert clock.sleeps == []


def test_requests_still_in_flight_are_assumed_uncounted_by_the_server() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    bucket = Bucket.of("GET", ALICE)
    reset_ms = str(int((clock.now + 5.0) * 1000))
    with rl.slot(bucket) as first, rl.slot(bucket):
        first.observe({"RateLimit-Remaining": "1", "RateLimit-Reset": reset_ms})
    send(rl, bucket)
    assert clock.sleeps == [pytest.approx(5.25)]


def test_a_slow_signature_counts_from_when_the_request_leaves() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    bucket = Bucket.of("POST", ALICE)
    start = clock.now
    with rl.slot(bucket) as slot:
        clock.now += 30.0  # a remote signer waiting for a person's approval
        slot.sending()
    for _ in range(9):
        send(rl, bucket)
    send(rl, bucket)
    assert clock.now == pytest.approx(start + 30.0 + 60.25)


def test_garbage_headers_are_ignored() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    bucket = Bucket.of("GET", ALICE)
    send(
        rl, bucket, {"RateLimit-Remaining": "many", "RateLimit-Limit": "-1", "Retry-After": "soon"}
    )
    send(rl, bucket)
    assert clock.sleeps == []


def test_relaxed_mode_does_not_wait() -> None:
    clock = FakeClock()
    rl = RateLimiter.for_mode("relaxed", clock=clock, sleep=clock.sleep)
    for _ in range(2000):
        send(rl, Bucket.of("POST", ALICE))
    assert clock.sleeps == []


def test_long_waits_are_logged_once() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    lines: list[str] = []
    bucket = Bucket.of("POST", ALICE)
    for _ in range(11):
        with rl.slot(bucket, log=lines.append):
            pass
    assert lines == [f"rate limit: waiting 60.2s for the writes of {ALICE.lower()} budget"]


def test_thread_safe_under_real_concurrency() -> None:
    rl = RateLimiter(RateLimits(read=Limit(5, 0.1), write=Limit(5, 0.1)), margin=0.01)
    bucket = Bucket.of("GET", ALICE)
    sent: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(3):
            with rl.slot(bucket), lock:
                sent.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sent) == 30
    # time.time() (the limiter's clock) and time.monotonic() can drift apart by a little
    assert max_in_any_window(sorted(sent), 0.1 - 0.005) <= 5
