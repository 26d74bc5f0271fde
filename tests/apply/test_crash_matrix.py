"""Crash matrix (issues #7, #14): apply killed at every boundary, then run again as a CI would.

Each scenario gets a fresh funded account (deposit and a named API key besides the
default one) and its own manifest file; its runs are real ``provision apply``
processes (forked from a fork server that imported the CLI once, or the ``provision``
executable itself) with ``PROVISION_FAILPOINT`` arming one kill point (a chained scenario
kills the rerun too, inside the recovery itself). After the last kill the scenario retries
plain ``provision apply`` the way a CI job's retry would: the same command, never
``--force-unlock``, nothing cleaned by hand, at most ``RETRIES`` times ``RETRY_DELAY``
apart, and it must have succeeded within the lease duration plus 30 s. A few scenarios start
from an account that had converged (a key deleted at dYdX behind our back, a key pruned),
and a few sign through a remote signer that only broadcasts by itself. Afterwards every
account must be converged: a plan with nothing to do, deposit events summing to exactly the
manifest amount, every API key dYdX lists with its secret complete in Vault (and none
foreign), and no journal entry left. Scenarios run in parallel processes to stay fast.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import apply_runs as helpers
from support.apply_runs import Manifest, chain_client, fresh_accounts, read_secret, write_manifest
from support.remote_signer import SendOnlySigner, use_remote_signer
from support.safety import ForkServers, Run, convergence_problems, dydx_client, provision
from test_rotation_crash import ROTATION_POINTS

from provisioner.failpoints import POINTS
from provisioner.sandbox.control import SandboxInfo
from provisioner.signers.local import LocalKeySigner

# the scenarios run in one fixture: give it room on a busy 2-CPU machine
pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(900)]

DEPOSIT = "2.500001"
KEYS = ["default", "hedger"]
WORKERS = 6
SIGKILL = -9
LOCK_TTL = 10  # seconds: short, yet renewed in time by six runs at once on two busy CPUs
RETRIES = 3
RETRY_DELAY = 2.0
# From the kill to the moment the retry that succeeded could start its work: the retries
# before it and its own wait for a lease (what a wedged lock would cost; the work itself,
# however long a loaded machine makes it, is not the point here).
RECOVERY_BUDGET = LOCK_TTL + 30
WAITED = re.compile(r"waiting up to (\d+)s for lease")


@dataclass(frozen=True)
class Scenario:
    points: tuple[str, ...]
    start: str = "fresh"  # "key_gone": converged, then hedger deleted at dYdX; "prune": converged, hedger dropped
    remote: bool = False  # the account signs through SendOnlySigner
    signal: str = "SIGKILL"  # SIGTERM / SIGINT: sent at each point of one run, which drains

    @property
    def id(self) -> str:
        extra = {"fresh": "", "key_gone": " [key deleted at dYdX]", "prune": " [--prune-api-keys]"}
        sent = "" if self.signal == "SIGKILL" else f"{self.signal} at "
        return (
            sent
            + (" then " if self.signal == "SIGKILL" else " and ").join(self.points)
            + extra[self.start]
            + (" [remote signer]" if self.remote else "")
        )

    @property
    def armed(self) -> list[str]:
        """PROVISION_FAILPOINT for each run that is stopped: one per kill, one for the signals."""
        if self.signal == "SIGKILL":
            return list(self.points)
        return [",".join(f"{p}={self.signal}" for p in self.points)]

    @property
    def stopped_rc(self) -> int:
        return {"SIGKILL": SIGKILL, "SIGTERM": 143, "SIGINT": 130}[self.signal]

    @property
    def options(self) -> tuple[str, ...]:
        return ("--prune-api-keys",) if self.start == "prune" else ()


# Reached by one apply of a fresh account, in the order they are met.
SINGLE = [
    "after_lock",
    "after_account_locks",
    "after_settle",
    "after_derive:stark_key",
    "before_vault_write:stark_key",
    "after_vault_write:stark_key",
    "after_step:stark_key",
    "after_onboard",
    "before_vault_write:default_api_key",
    "after_vault_write:default_api_key",
    "before_vault_write:stark_account",
    "after_vault_write:stark_account",
    "after_step:onboard",
    "after_intent:api_key",
    "after_create:api_key",
    "after_intent_update:api_key",
    "before_vault_write:api_key",
    "after_vault_write:api_key",
    "after_step:api_key",
    *(
        f"{point}:{intent}"
        for intent in ("register", "approve", "deposit")
        for point in ("after_sign", "after_journal_record", "after_broadcast", "after_receipt")
    ),
    "after_step:register",
    "after_step:approve",
    "after_step:deposit",
]
# The second kill lands in the rerun, on a path only a crash leaves behind.
CHAINED = [
    ("after_onboard", "after_step:record_account"),  # STARK secret without its position id
    ("after_intent_update:api_key", "settle:after_orphan_delete"),  # orphaned key deleted at dYdX
    ("after_journal_record:deposit", "settle:after_rebroadcast"),  # same signed bytes resent
    ("after_broadcast:deposit", "settle:before_forget"),  # journaled deposit mined
]
SCENARIOS: list[Scenario] = [
    *(Scenario((p,)) for p in SINGLE),
    *(Scenario(chain) for chain in CHAINED),
    Scenario(("after_step:replace_api_key",), start="key_gone"),
    Scenario(("after_step:delete_api_key",), start="prune"),
    # a remote signer broadcasts by itself and only then tells the hash
    *(
        Scenario((f"after_remote_send:{i}",), remote=True)
        for i in ("register", "approve", "deposit")
    ),
]
# A CI cancel or a pod eviction (SIGTERM), Ctrl-C (SIGINT) at each kind of moment: before
# anything is done, between steps, inside a step (its call in flight finishes), while a
# transaction is being sent; the run stops within 30 s, and the very next apply succeeds.
STOPPED = [
    *(
        Scenario((p,), signal="SIGTERM")
        for p in (
            "after_lock",
            "after_account_locks",
            "after_settle",
            "after_onboard",
            "after_create:api_key",
            "after_step:register",
            "after_journal_record:deposit",
            "after_receipt:deposit",
        )
    ),
    Scenario(("after_step:stark_key",), signal="SIGINT"),
    Scenario(("after_journal_record:approve",), signal="SIGTERM", remote=True),
    # a second Ctrl-C aborts at once, as a SIGKILL would: the next run takes over at once
    # (both inside the onboard step: the call in flight, then the position it records)
    Scenario(("after_onboard", "after_vault_write:stark_account"), signal="SIGINT"),
]
SCENARIOS += STOPPED
# Killed after dYdX answered POST /v3/api-keys but before the new key's id reached the
# journal: that key cannot be told from one the desk made with its own tools meanwhile, so
# it is reported and left at dYdX (its secret died with the process); the step makes another.
LEFT_AT_DYDX = {("after_create:api_key",): "1 key(s) at dYdX without a secret in Vault"}
# A remote signer asked and killed before it answered: it may still send, so the journal
# keeps the request for a person (tests/apply/test_remote_signer_crash.py), not for retries.
# Most runs are forked from a fork server that imported the CLI once (see forkserver.py);
# these scenarios run the installed ``provision`` executable itself, start to finish.
REAL_BINARY = {("after_lock",), ("after_broadcast:deposit",), ("after_create:api_key",)}


@dataclass
class Outcome:
    manifest: Manifest
    runs: list[Run]  # the setup run (if any), the killed runs, then the retries
    killed: list[Run]
    retries: list[Run]
    recovery_seconds: float  # see RECOVERY_BUDGET


@dataclass
class Matrix:
    outcomes: dict[Scenario, Outcome]
    combined: Manifest  # every scenario's account in one manifest, for one plan
    deposits: dict[tuple[int, int], int]
    plan: dict[str, list[str]]  # account -> steps still planned
    plan_rc: int
    unsettled_notes: dict[str, list[str]]


def _apply_args(m: Manifest, scenario: Scenario) -> tuple[str, ...]:
    return (
        "-v", "apply", "-f", str(m.path), "--auto-approve", "--lock-ttl", str(LOCK_TTL),
        *scenario.options,
    )  # fmt: skip


def _retry_like_ci(
    sandbox: SandboxInfo, args: tuple[str, ...], via: ForkServers | None
) -> tuple[list[Run], float]:
    """The retries, and the seconds until the last one could start its work (RECOVERY_BUDGET)."""
    runs: list[Run] = []
    started = time.monotonic()
    last = started
    for attempt in range(RETRIES):
        if attempt:
            time.sleep(RETRY_DELAY)
        last = time.monotonic()
        runs.append(provision(sandbox, *args, servers=via))
        if runs[-1].rc == 0:
            break
    waited = WAITED.search(runs[-1].err)
    return runs, last - started + (int(waited.group(1)) if waited else 0)


def _prepare(
    sandbox: SandboxInfo, scenario: Scenario, m: Manifest, via: ForkServers | None
) -> list[Run]:
    """Bring the account to where the scenario starts: converged, then changed behind our back."""
    if scenario.start == "fresh":
        return []
    setup = provision(sandbox, *_apply_args(m, Scenario(())), servers=via)
    assert setup.rc == 0, str(setup)
    account = m.accounts[0]
    if scenario.start == "key_gone":
        default = read_secret(sandbox, m.api_path(account.name, "default"))
        hedger = read_secret(sandbox, m.api_path(account.name, "hedger"))
        assert default is not None and hedger is not None
        with dydx_client(sandbox) as dydx:
            dydx.delete_api_key(
                LocalKeySigner(account.private_key), hedger[0]["key"], default_key=default[0]["key"]
            )
    else:
        account.api_keys = ["default"]
        m.rewrite()
    return [setup]


def _run_scenario(
    sandbox: SandboxInfo, scenario: Scenario, m: Manifest, servers: ForkServers
) -> Outcome:
    via = None if scenario.points in REAL_BINARY else servers
    runs = _prepare(sandbox, scenario, m, via)
    killed: list[Run] = []
    for armed in scenario.armed:
        killed.append(provision(sandbox, *_apply_args(m, scenario), failpoint=armed, servers=via))
        if killed[-1].rc != scenario.stopped_rc:
            break  # the point was not reached: reported by the test
    retries, recovery = _retry_like_ci(sandbox, _apply_args(m, scenario), via)
    return Outcome(m, runs + killed + retries, killed, retries, recovery)


@pytest.fixture(scope="module")
def matrix(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    funded = fresh_accounts(sandbox, len(SCENARIOS))
    root = tmp_path_factory.mktemp("crash")
    signer = SendOnlySigner(sandbox.rpc_url)
    accounts = [
        helpers.TestAccount(f"crash-{i}", address, key, deposit=DEPOSIT, api_keys=list(KEYS))
        for i, (address, key) in enumerate(funded)
    ]
    # One prefix and state_path for all, one manifest file (so one lock) per scenario.
    combined = write_manifest(root, accounts, filename="all.yaml")
    jobs = []
    for i, (scenario, acct) in enumerate(zip(SCENARIOS, accounts, strict=True)):
        (root / str(i)).mkdir()
        m = write_manifest(
            root / str(i), [acct], prefix=combined.prefix, state_path=combined.state_path
        )
        if scenario.remote:
            signer.add(acct.private_key)
            use_remote_signer(m.path, signer.url)
        jobs.append((scenario, m))
    servers = ForkServers(WORKERS)
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            results = list(pool.map(lambda job: _run_scenario(sandbox, *job, servers), jobs))
        combined.rewrite()  # the pruned account names its default key only
        for scenario, m in jobs:
            if scenario.remote:
                _remote_in_combined(combined.path, m.accounts[0].name, signer.url)
        with chain_client(sandbox) as chain:
            deposits = chain.deposits(refresh=True)
        with pytest.MonkeyPatch.context() as mp:
            for name, value in sandbox.env().items():
                mp.setenv(name, value)
            plan, rc, notes = _plan(combined.path)
    finally:
        servers.close()
        signer.close()
    yield Matrix(
        outcomes={job[0]: out for job, out in zip(jobs, results, strict=True)},
        combined=combined,
        deposits=deposits,
        plan=plan,
        plan_rc=rc,
        unsettled_notes=notes,
    )


def _remote_in_combined(path: Path, name: str, url: str) -> None:
    import yaml

    doc = yaml.safe_load(path.read_text())
    for account in doc["accounts"]:
        if account["name"] == name:
            account["signer"] = {"remote": {"url": url, "timeout_seconds": 30}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _plan(path: Path) -> tuple[dict[str, list[str]], int, dict[str, list[str]]]:
    planned = helpers.cli_captured(
        "plan", "-f", str(path), "--format", "json", "--detailed-exitcode"
    )
    rc = planned.rc
    data = json.loads(planned.out)
    steps = {a["name"]: [s["id"] for s in a["steps"]] for a in data["accounts"]}
    notes = {
        a["name"]: [n["message"] for n in a["notes"] if "interrupted" in n["message"]]
        for a in data["accounts"]
    }
    return steps, rc, notes


def test_the_matrix_covers_every_declared_kill_point() -> None:
    covered = {p for scenario in SCENARIOS if scenario.signal == "SIGKILL" for p in scenario.points}
    # the rotation's stages: tests/apply/test_rotation_crash.py, on accounts whose key aged
    assert covered | set(ROTATION_POINTS) == set(POINTS)
    assert not covered & set(ROTATION_POINTS)
    assert len(POINTS) == 43 + 9


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_killed_or_stopped_apply_converges_on_plain_retries(
    matrix: Matrix, scenario: Scenario, sandbox: SandboxInfo
) -> None:
    outcome = matrix.outcomes[scenario]
    assert [r.failpoint for r in outcome.killed] == scenario.armed
    for run in outcome.killed:
        assert run.rc == scenario.stopped_rc, f"not stopped at {run.failpoint}: {run}"
    final = outcome.retries[-1]
    assert all("--force-unlock" not in " ".join(r.args) for r in outcome.runs)
    assert final.failpoint is None and final.rc == 0, "\n".join(map(str, outcome.retries))
    assert outcome.recovery_seconds <= RECOVERY_BUDGET
    assert "Traceback" not in final.err
    name = outcome.manifest.accounts[0].name
    assert matrix.plan[name] == [], f"{name} not converged: {matrix.plan[name]}"
    assert matrix.unsettled_notes[name] == []
    problems = convergence_problems(sandbox, outcome.manifest, matrix.deposits)
    killed = scenario.signal == "SIGKILL" and scenario.start == "fresh" and not scenario.remote
    expected = LEFT_AT_DYDX.get(scenario.points) if killed else None
    assert [p for p in problems if not (expected and expected in p)] == [], problems
    if expected:
        assert len(problems) == 1, problems


def test_the_next_run_takes_a_killed_runs_leases_over_at_once(matrix: Matrix) -> None:
    """On the same host a SIGKILLed holder is seen gone: the first retry works, and says whose
    lease it took; no retry ever had to wait for a lease to expire."""
    for scenario, outcome in matrix.outcomes.items():
        assert len(outcome.retries) == 1, f"{scenario.id}: " + "\n".join(map(str, outcome.retries))
        assert "waiting up to" not in outcome.retries[0].err
    final = matrix.outcomes[Scenario(("after_lock",))].retries[0]
    killed = matrix.outcomes[Scenario(("after_lock",))].killed[0]
    assert "took over" in final.err and "no longer exists" in final.err, final
    assert "another apply holds" not in final.err
    # the killed run's account lock names its run lease, which the rerun now holds
    after_locks = matrix.outcomes[Scenario(("after_account_locks",))].retries[0]
    assert "its run no longer holds a lease" in after_locks.err, after_locks
    assert killed.rc == SIGKILL


def test_one_plan_over_every_crashed_account_is_empty(matrix: Matrix) -> None:
    assert matrix.plan_rc == 0, matrix.plan


def test_recovery_runs_say_what_they_settled(matrix: Matrix) -> None:
    def runs(*points: str) -> list[Run]:
        return matrix.outcomes[Scenario(points)].runs

    # the plan shows the orphaned key, the run deletes it before creating a new one
    final = runs("after_intent_update:api_key")[-1]
    assert "interrupted apply created API key hedger" in final.out, final
    assert "its secret never reached Vault" in final.err, final
    # without its id in the journal, the new key is reported and left alone
    final = runs("after_create:api_key")[-1]
    assert "appeared at dYdX" in final.out and "left alone" in final.out, final
    assert "deleted API key" not in final.err, final
    settled = runs("after_intent_update:api_key", "settle:after_orphan_delete")
    assert "its secret never reached Vault" in settled[1].err
    assert "deleted API key" not in settled[2].err  # gone already: only the entry is cleared
    # a journaled transaction the node never saw goes out again as the same signed bytes
    journaled = runs("after_journal_record:deposit", "settle:after_rebroadcast")
    assert "unknown to the node" in journaled[1].out
    assert "rebroadcasting journaled deposit" in journaled[1].err
    assert "journaled deposit" in runs("after_broadcast:deposit")[-1].out
    # killed before anything was sent: nothing journaled, the rerun signs afresh
    assert "journaled deposit" not in runs("after_sign:deposit")[-1].out
    # a remote signer's transaction known by its nonce only: waited for, never sent twice
    remote = matrix.outcomes[Scenario(("after_remote_send:deposit",), remote=True)].runs[-1]
    assert "journaled deposit with nonce" in remote.err and "mined" in remote.err, remote


@pytest.mark.parametrize("scenario", STOPPED, ids=[s.id for s in STOPPED])
def test_a_signal_stops_the_run_within_30s_and_releases_its_leases(
    matrix: Matrix, scenario: Scenario
) -> None:
    outcome = matrix.outcomes[scenario]
    [stopped] = outcome.killed
    assert "Traceback" not in stopped.err
    assert f"{scenario.signal}: finishing the calls in flight, starting no new step" in stopped.err
    if len(scenario.points) > 1:  # the second signal: no drain, no release, gone at once
        assert f"{scenario.signal} again: aborting at once" in stopped.err
        assert (
            "took over" in outcome.retries[0].err and "no longer exists" in outcome.retries[0].err
        )
        return
    found = re.search(rf"Stopped on {scenario.signal} after (\d+\.\d)s", stopped.out + stopped.err)
    assert found, str(stopped)
    assert float(found.group(1)) <= 30
    assert "the next apply does the rest" in stopped.out + stopped.err, stopped
    # the leases were released: the next apply neither waits nor takes anything over
    assert (
        "took over" not in outcome.retries[0].err and "waiting up to" not in outcome.retries[0].err
    )


def _state_of(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2 :].split()[0]


def _world(sandbox: SandboxInfo, m: Manifest) -> dict[str, object]:
    """Everything a run could change: dYdX writes (all of them, nothing else runs now), the
    account's transactions, and the version of every Vault path the manifest's runs use."""
    [account] = m.accounts
    return {
        "dydx writes": helpers.emulator_stats(sandbox)["writes"],
        "transactions": helpers.nonces(sandbox, [account.address]),
        "vault": helpers.tree_versions(sandbox, m.prefix),
    }


def test_a_paused_run_that_lost_its_lease_sends_writes_and_deletes_nothing(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    """Paused (SIGSTOP) past its lease while another run takes over and converges, then
    resumed (SIGCONT): the first run must not act again, whatever it was about to do."""
    [acct] = helpers.make_accounts(
        sandbox, [{"name": "paused", "deposit": DEPOSIT, "api_keys": list(KEYS)}]
    )
    m = write_manifest(tmp_path, [acct])
    args = ("-v", "apply", "-f", str(m.path), "--auto-approve", "--lock-ttl", "4")
    env = {**os.environ, **sandbox.env(), "NO_COLOR": "1"}
    env["PROVISION_FAILPOINT"] = "after_step:onboard=SIGSTOP"  # next: a key, 3 transactions
    out, err = tmp_path / "paused.out", tmp_path / "paused.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        paused = subprocess.Popen(
            [helpers.PROVISION, *args], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
            env=env, cwd=helpers.REPO,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while _state_of(paused.pid) != "T":
            assert paused.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "the run never reached its pause"
            time.sleep(0.1)
        retries, _recovery = _retry_like_ci(sandbox, args, None)
        assert retries[-1].rc == 0, "\n".join(map(str, retries))
        took = retries[-1].err  # after waiting for the lease to expire, if it had not yet
        assert "took over" in took and "expired" in took, took
        before = _world(sandbox, m)
    finally:
        os.kill(paused.pid, signal.SIGCONT)
    assert paused.wait(timeout=120) == 1, out.read_text() + err.read_text()
    assert _world(sandbox, m) == before
    said = err.read_text()
    assert "no longer holds" in said and "lapsed" in said, said
    assert "Traceback" not in said
    with chain_client(sandbox) as chain:
        deposits = chain.deposits(refresh=True)
    assert convergence_problems(sandbox, m, deposits) == []
