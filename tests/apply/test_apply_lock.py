"""Apply locks are leases in the sandbox's Vault: renewed, taken once expired or from a dead
holder on this host, fenced before every side effect (issue #14).

Expiry is driven by a clock the test moves (``FakeClock``), never by sleeping through a
lease; the heartbeat tests use a 3 s lease and real time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import pytest
from support.tcp_proxy import TcpProxy

from provisioner.apply.holder import Process, process_start
from provisioner.apply.lease import Lease, LeaseLost, LeaseRecord, LockHeld
from provisioner.apply.lock import AccountLocks, account_lock_path, lock_path
from provisioner.clients.vault import VaultClient
from provisioner.manifest.model import SecretRef, VaultAuth, VaultSpec
from provisioner.redact import Redactor
from provisioner.sandbox.control import SandboxInfo
from provisioner.secrets import SecretResolver

pytestmark = pytest.mark.sandbox

TTL = 3


@dataclass
class FakeClock:
    """Wall and monotonic time that move only when told to."""

    now: float = 1_800_000_000.0
    mono: float = 1_000.0

    def wall(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


def _client(address: str, token: str) -> VaultClient:
    redactor = Redactor()
    resolver = SecretResolver(redactor, {"T": token})
    spec = VaultSpec(address=address, auth=VaultAuth(method="token", token=SecretRef("env", "T")))
    return VaultClient.connect(spec, resolver, redactor)


@pytest.fixture
def vault(sandbox: SandboxInfo) -> VaultClient:
    return _client(sandbox.vault_addr, sandbox.vault_token)


@pytest.fixture
def path() -> str:
    return lock_path(f"lock-test-{uuid.uuid4().hex[:8]}", "provision.yaml")


ELSEWHERE = Process("ci", "runner-7", "boot-of-another-host", "pid:[1]", 4242, "777")


def _version(vault: VaultClient, path: str) -> int:
    found = vault.read_state(path)
    assert found is not None
    return found[1]


def test_a_live_lease_on_this_host_is_refused_without_a_force_unlock_hint(
    vault: VaultClient, path: str
) -> None:
    held = Lease(vault, path, TTL).acquire()  # this very process: alive
    with pytest.raises(LockHeld) as refused:
        Lease(vault, path, TTL).acquire()
    message = str(refused.value)
    assert f"lease {held.id} held by" in message and f"pid {os.getpid()}" in message
    assert "expires in" in message and "runs on this host" in message
    assert "--force-unlock" not in message


def test_a_live_lease_on_another_host_says_when_it_expires_and_offers_force_unlock(
    vault: VaultClient, path: str
) -> None:
    clock = FakeClock()
    held = Lease(vault, path, 60, clock=clock, me=ELSEWHERE).acquire()
    clock.advance(20)
    with pytest.raises(LockHeld) as refused:
        Lease(vault, path, 60, clock=clock).acquire()
    message = str(refused.value)
    assert "ci@runner-7 pid 4242" in message
    assert "run again once it expires (in 40s)" in message
    assert f"--force-unlock {held.id}" in message
    with pytest.raises(LockHeld):
        Lease(vault, path, 60, clock=clock).acquire(force_unlock="not-the-id")
    rescuer = Lease(vault, path, 60, clock=clock)
    taken = rescuer.acquire(force_unlock=held.id)
    assert rescuer.takeover is not None and "--force-unlock named it" in rescuer.takeover.describe()
    assert rescuer.current()[0] == taken


def test_an_expired_lease_is_taken_over_saying_whose_and_how_long_ago(
    vault: VaultClient, path: str
) -> None:
    clock = FakeClock()
    old = Lease(vault, path, 60, clock=clock, me=ELSEWHERE)
    held = old.acquire()
    clock.advance(60 + 12)
    rerun = Lease(vault, path, 60, clock=clock)
    taken = rerun.acquire()  # no --force-unlock: the lease expired
    assert rerun.takeover is not None
    said = rerun.takeover.describe()
    assert f"lease {held.id}" in said and "ci@runner-7 pid 4242" in said
    assert "it expired 12s ago" in said
    with pytest.raises(LeaseLost, match="lapsed"):
        old.check()  # the old holder's own clock says it lapsed: it never acts again
    old.release()  # and cannot release what the rerun holds
    assert rerun.current()[0] == taken
    rerun.release()
    assert rerun.current()[0] is None
    Lease(vault, path, TTL).acquire()  # free again


def _dead_process() -> Process:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    start = process_start(child.pid)
    assert start
    me = Process.current()
    child.kill()
    child.wait()
    return replace(me, pid=child.pid, start=start)


def test_a_dead_holder_on_this_host_is_taken_over_at_once(vault: VaultClient, path: str) -> None:
    clock = FakeClock()
    dead = _dead_process()
    held = Lease(vault, path, 60, clock=clock, me=dead).acquire()
    rerun = Lease(vault, path, 60, clock=clock)  # same moment: the lease has 60 s left
    rerun.acquire()
    assert rerun.takeover is not None and rerun.takeover.previous.id == held.id
    assert f"pid {dead.pid} on this host, no longer exists" in rerun.takeover.describe()


def test_a_reused_pid_is_not_taken_for_the_holder(vault: VaultClient, path: str) -> None:
    me = Process.current()
    assert me.start, "this host's /proc tells process start times"
    earlier_life = replace(me, start=str(int(me.start) - 1))  # our pid, another process's start
    Lease(vault, path, 60, me=earlier_life).acquire()
    rerun = Lease(vault, path, 60)
    rerun.acquire()
    assert rerun.takeover is not None and "no longer exists" in rerun.takeover.reason
    # the same pid with the same start time is the holder itself: alive
    with pytest.raises(LockHeld):
        Lease(vault, path, 60).acquire()


def test_a_holder_elsewhere_is_never_judged_by_this_hosts_processes(
    vault: VaultClient, path: str
) -> None:
    other_boot = replace(_dead_process(), boot_id="another-boot")  # same name, rebooted/other VM
    assert not other_boot.gone(Process.current())
    Lease(vault, path, 60, me=other_boot).acquire()
    with pytest.raises(LockHeld, match="--force-unlock"):
        Lease(vault, path, 60).acquire()


def test_the_heartbeat_keeps_a_short_lease_alive_past_its_duration(
    vault: VaultClient, path: str
) -> None:
    lease = Lease(vault, path, TTL)
    lease.acquire()
    first = _version(vault, path)
    with lease.heartbeat() as beat:
        time.sleep(TTL * 1.7)
        lease.check()  # still ours
        record, _ = lease.current()
        assert record is not None and record.expires_at > time.time() + TTL / 3
        with pytest.raises(LockHeld):
            Lease(vault, path, TTL).acquire()
    assert beat.errors == []
    assert _version(vault, path) >= first + 3  # renewed about every second, by check-and-set
    lease.release()
    assert lease.current()[0] is None


def test_the_fence_renews_a_lease_with_little_time_left(vault: VaultClient, path: str) -> None:
    clock = FakeClock()
    lease = Lease(vault, path, 60, clock=clock)
    lease.acquire()
    before = _version(vault, path)
    clock.advance(30)  # 30 s left: more than a third
    lease.check()
    assert _version(vault, path) == before
    clock.advance(15)  # 15 s left: less than a third, renewed before acting
    lease.check()
    assert _version(vault, path) == before + 1
    assert lease.remaining() == pytest.approx(60)
    record, _ = lease.current()
    assert record is not None and record.expires_at == pytest.approx(clock.now + 60)


def test_a_lapsed_lease_is_lost_for_good_and_never_written_again(
    vault: VaultClient, path: str
) -> None:
    clock = FakeClock()
    lease = Lease(vault, path, 60, clock=clock)
    lease.acquire()
    before = _version(vault, path)
    clock.advance(61)  # paused past its expiry (SIGSTOP, a frozen VM)
    with pytest.raises(LeaseLost, match="lapsed 1.0s ago"):
        lease.check()
    clock.advance(-30)  # even if time seemed to go back: lost is lost
    with pytest.raises(LeaseLost):
        lease.check()
    with pytest.raises(LeaseLost):
        lease.renew()
    assert _version(vault, path) == before


def test_a_lease_taken_over_is_lost_at_its_next_renewal(vault: VaultClient, path: str) -> None:
    slow = Lease(vault, path, 60, me=ELSEWHERE)
    slow.acquire()
    rescuer = Lease(vault, path, 60)
    taken = rescuer.acquire(force_unlock=slow.id)
    with pytest.raises(LeaseLost, match=f"another run took it over \\(lease {taken.id}"):
        slow.renew()
    with pytest.raises(LeaseLost):
        slow.check()
    assert rescuer.current()[0] == taken


def test_renewal_errors_are_told_and_the_fence_refuses_once_it_cannot_renew(
    sandbox: SandboxInfo, path: str
) -> None:
    target = urlsplit(sandbox.vault_addr)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 8200)
    try:
        lease = Lease(_client(proxy.url, sandbox.vault_token), path, TTL)
        lease.acquire()
        told: list[str] = []
        with lease.heartbeat(told.append) as beat:
            proxy.down()
            time.sleep(TTL + 0.5)
        assert told and all("renewing" in m and "Vault at" in m for m in told[:-1])
        assert beat.errors == told
        with pytest.raises(LeaseLost) as lost:
            lease.check()
        assert "lapsed" in str(lost.value) and "last renewal: Vault at" in str(lost.value)
    finally:
        proxy.down()


def test_account_locks_live_and_lapse_with_their_run_lease(vault: VaultClient) -> None:
    state = f"lock-test-{uuid.uuid4().hex[:8]}"
    clock = FakeClock()
    first = Lease(vault, lock_path(state, "a.yaml"), 60, clock=clock, me=ELSEWHERE)
    first.acquire()
    mine = AccountLocks(vault, state, first)
    assert mine.acquire(["mm-1", "mm-2"]) == {}
    mine.check("mm-1")
    with pytest.raises(LeaseLost):
        mine.check("mm-3")
    other = Lease(vault, lock_path(state, "b.yaml"), 60, clock=clock)
    other.acquire()
    theirs = AccountLocks(vault, state, other)
    clock.advance(50)
    first.renew()  # the heartbeat: one renewal of the run lease keeps every account lock
    other.renew()
    clock.advance(50)
    other.renew()
    busy = theirs.acquire(["mm-2", "mm-3"])
    assert set(busy) == {"mm-2"} and busy["mm-2"].holder.id == first.id
    assert "ci@runner-7 pid 4242" in busy["mm-2"].message
    assert f"--force-unlock {first.id}" in busy["mm-2"].message
    clock.advance(21)  # the first run stopped renewing: its lease and account locks expire
    assert theirs.acquire(["mm-1", "mm-2"]) == {}
    assert theirs.held == {"mm-1", "mm-2", "mm-3"}
    said = sorted(t.describe() for t in theirs.takeovers)
    assert len(said) == 2 and all(
        f"its run's lease {first.id}: it expired 11s ago" in s for s in said
    )
    with pytest.raises(LeaseLost):
        mine.check("mm-1")
    mine.release()  # leaves the locks the other run took
    record = vault.read_state(account_lock_path(state, "mm-1"))
    assert record is not None and LeaseRecord.parse(record[0]) is not None
    theirs.release()
    record = vault.read_state(account_lock_path(state, "mm-1"))
    assert record is not None and record[0] == {}


def test_account_locks_of_a_run_whose_lease_was_taken_over_are_free(vault: VaultClient) -> None:
    state = f"lock-test-{uuid.uuid4().hex[:8]}"
    killed = Lease(vault, lock_path(state, "a.yaml"), 60, me=_dead_process())
    killed.acquire()
    AccountLocks(vault, state, killed).acquire(["mm-1"])  # never released: a SIGKILL
    rerun = Lease(vault, lock_path(state, "a.yaml"), 60)
    rerun.acquire()  # the holder is gone: at once
    locks = AccountLocks(vault, state, rerun)
    assert locks.acquire(["mm-1"]) == {}
    [took] = locks.takeovers
    assert "its run no longer holds a lease" in took.reason
    locks.release()


def test_a_lease_left_on_another_host_is_waited_for_and_taken_once_it_expires(
    vault: VaultClient, path: str
) -> None:
    clock = FakeClock()
    killed = Lease(vault, path, 60, clock=clock, me=ELSEWHERE)
    held = killed.acquire()  # then the runner was lost: nobody renews it
    clock.advance(15)
    slept: list[float] = []
    told: list[str] = []

    def sleep(seconds: float) -> bool:
        slept.append(seconds)
        clock.advance(seconds)
        return False

    rerun = Lease(vault, path, 60, clock=clock)
    rerun.acquire(wait=sleep, on_wait=told.append)
    assert sum(slept) == pytest.approx(45, abs=1)
    assert told == [
        f"waiting up to 45s for lease {held.id} held by ci@runner-7 pid 4242 for 15s, expires in 45s"
        ": taken once it expires, refused if it is renewed"
    ]
    assert rerun.takeover is not None and "it expired 0s ago" in rerun.takeover.reason


def test_a_lease_renewed_on_another_host_is_refused_after_one_look(
    vault: VaultClient, path: str
) -> None:
    clock = FakeClock()
    busy = Lease(vault, path, 60, clock=clock, me=ELSEWHERE)
    busy.acquire()

    def sleep(seconds: float) -> bool:
        clock.advance(seconds)
        busy.renew()  # its heartbeat
        return False

    with pytest.raises(LockHeld, match=f"--force-unlock {busy.id}"):
        Lease(vault, path, 60, clock=clock).acquire(wait=sleep)
    assert clock.now < 1_800_000_000.0 + 2


def test_waiting_stops_on_a_drain(vault: VaultClient, path: str) -> None:
    clock = FakeClock()
    Lease(vault, path, 60, clock=clock, me=ELSEWHERE).acquire()
    with pytest.raises(LockHeld, match="stopped while waiting"):
        Lease(vault, path, 60, clock=clock).acquire(wait=lambda _s: True)
