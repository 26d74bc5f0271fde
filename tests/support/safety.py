"""Helpers for the issue #7 safety tests: CLI runs with a failpoint, and what a converged
account must look like afterwards (exact deposits, every dYdX key in Vault, no journal)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from support.apply_runs import PROVISION, REPO, Manifest, read_secret, secret_paths

from provisioner.clients.dydx import ApiCredentials, DydxClient
from provisioner.clients.ratelimit import RateLimiter
from provisioner.clients.retry import RetryPolicy
from provisioner.money import to_base_units
from provisioner.networks import SEPOLIA
from provisioner.redact import Redactor
from provisioner.sandbox.control import SandboxInfo

FORKSERVER = Path(__file__).with_name("forkserver.py")
API_FIELDS = {"key", "secret", "passphrase", "ethereum_address", "network"}
STARK_FIELDS = {
    "private_key",
    "public_key",
    "public_key_y_coordinate",
    "ethereum_address",
    "position_id",
    "account_id",
    "network",
}


@dataclass
class Run:
    args: tuple[str, ...]
    failpoint: str | None
    rc: int
    out: str
    err: str

    def __str__(self) -> str:  # for assertion messages; runs never print secrets
        return f"provision {' '.join(self.args)} [failpoint {self.failpoint}] rc={self.rc}\n{self.out}\n{self.err}"


class ForkServer:
    """A process that has imported the CLI once and forks one real process per run (forkserver.py)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self._proc = subprocess.Popen(
            [sys.executable, str(FORKSERVER), str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )
        theirs.close()
        self._channel = ours
        self._answers = ours.makefile("r", encoding="utf-8")
        self._tmp = Path(tempfile.mkdtemp(prefix="forkserver-"))
        self._runs = itertools.count()

    def run(self, args: Sequence[str], env: dict[str, str], timeout: float) -> tuple[int, str, str]:
        n = next(self._runs)
        out, err = self._tmp / f"{n}.out", self._tmp / f"{n}.err"
        request = {
            "args": list(args),
            "env": env,
            "cwd": str(REPO),
            "out": str(out),
            "err": str(err),
        }
        self._channel.settimeout(timeout)
        self._channel.sendall((json.dumps(request) + "\n").encode())
        answer = json.loads(self._answers.readline())
        return int(answer["rc"]), out.read_text(), err.read_text()

    def close(self) -> None:
        self._channel.shutdown(socket.SHUT_RDWR)
        self._answers.close()
        self._channel.close()
        self._proc.wait(timeout=10)
        shutil.rmtree(self._tmp, ignore_errors=True)


class ForkServers:
    """A pool of fork servers, one per concurrent runner thread."""

    def __init__(self, count: int) -> None:
        self._free: queue.Queue[ForkServer] = queue.Queue()
        self._all = [ForkServer() for _ in range(count)]
        for server in self._all:
            self._free.put(server)

    @contextlib.contextmanager
    def lease(self) -> Iterator[ForkServer]:
        server = self._free.get()
        try:
            yield server
        finally:
            self._free.put(server)

    def close(self) -> None:
        for server in self._all:
            server.close()


def provision(
    sandbox: SandboxInfo,
    *args: str,
    failpoint: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    servers: ForkServers | None = None,
) -> Run:
    """``provision ARGS`` as a real process without a terminal; ``failpoint`` arms PROVISION_FAILPOINT.

    With ``servers`` the process is forked from a fork server that imported the CLI already
    (same code, same process boundary, a second and a half less CPU); else ``.venv/bin/provision``.
    """
    full = dict(os.environ)
    full.update(sandbox.env())
    full["NO_COLOR"] = "1"
    full.pop("PROVISION_FAILPOINT", None)
    if failpoint:
        full["PROVISION_FAILPOINT"] = failpoint
    full.update(env or {})
    if servers is not None:
        with servers.lease() as server:
            rc, out, err = server.run(args, full, timeout)
        return Run(tuple(args), failpoint, rc, out, err)
    proc = subprocess.run(
        [PROVISION, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=full,
        timeout=timeout,
        cwd=REPO,
    )
    return Run(tuple(args), failpoint, proc.returncode, proc.stdout, proc.stderr)


def journal_keys(sandbox: SandboxInfo, m: Manifest) -> list[str]:
    """Every journal entry left under the manifest's state_path."""
    return secret_paths(sandbox, f"{m.state_path}/journal")


def dydx_client(sandbox: SandboxInfo) -> DydxClient:
    return DydxClient(
        sandbox.api_url,
        SEPOLIA.chain_id,
        redactor=Redactor(),
        retry=RetryPolicy(max_attempts=3, base_delay=0.1),
        limiter=RateLimiter(),
    )


def listed_keys(
    sandbox: SandboxInfo, address: str, default_secret: dict[str, str]
) -> frozenset[str]:
    creds = ApiCredentials(
        key=default_secret["key"],
        secret=default_secret["secret"],
        passphrase=default_secret["passphrase"],
    )
    with dydx_client(sandbox) as client:
        return client.list_api_keys(address, creds)


def convergence_problems(
    sandbox: SandboxInfo, m: Manifest, deposits: dict[tuple[int, int], int]
) -> list[str]:
    """What is wrong with the manifest's accounts: [] when each is exactly as declared.

    ``deposits``: the chain's LogDeposit totals (read once by the caller, refreshed).
    """
    problems: list[str] = []
    for acct in m.accounts:
        who = acct.name
        stark = read_secret(sandbox, m.stark_path(who))
        if stark is None:
            problems.append(f"{who}: no STARK key in Vault")
            continue
        data, meta = stark
        if set(data) != STARK_FIELDS or not all(data.values()):
            problems.append(f"{who}: STARK secret fields {sorted(data)}")
        if (meta.get("custom_metadata") or {}).get("managed-by") != "dydx-provisioner":
            problems.append(f"{who}: STARK secret not marked as ours")
        total = deposits.get((int(data["public_key"], 16), int(data.get("position_id") or -1)), 0)
        want = to_base_units(Decimal(acct.deposit))
        if total != want:
            problems.append(f"{who}: deposit events total {total}, manifest says {want}")
        stored: dict[str, str] = {}
        for key in acct.api_keys:
            found = read_secret(sandbox, m.api_path(who, key))
            if found is None:
                problems.append(f"{who}: no API key {key} in Vault")
                continue
            secret, meta = found
            if set(secret) != API_FIELDS or not all(secret.values()):
                problems.append(f"{who}: API key {key} fields {sorted(secret)}")
            if (meta.get("custom_metadata") or {}).get("managed-by") != "dydx-provisioner":
                problems.append(f"{who}: API key {key} not marked as ours")
            stored[key] = secret.get("key", "")
        default = read_secret(sandbox, m.api_path(who, "default"))
        if default is not None:
            at_dydx = listed_keys(sandbox, acct.address, default[0])
            if at_dydx != frozenset(stored.values()):
                unknown = len(at_dydx - set(stored.values()))
                missing = len(set(stored.values()) - at_dydx)
                problems.append(
                    f"{who}: {unknown} key(s) at dYdX without a secret in Vault, "
                    f"{missing} stored key(s) not at dYdX"
                )
    left = journal_keys(sandbox, m)
    if left:
        problems.append(f"journal entries left: {left}")
    return problems


def emulator_faults(sandbox: SandboxInfo, rules: list[dict[str, Any]] | None) -> None:
    """Replace the emulator's fault rules (None or [] clears them)."""
    import requests

    requests.delete(f"{sandbox.api_url}/admin/faults", timeout=10).raise_for_status()
    if rules:
        requests.post(
            f"{sandbox.api_url}/admin/faults", json={"rules": rules}, timeout=10
        ).raise_for_status()


def manifest_file(m: Manifest) -> str:
    return str(Path(m.path).resolve())
