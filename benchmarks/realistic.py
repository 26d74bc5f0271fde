"""Issue #21's benchmarks: plan and apply where desks run them, far from dYdX, with real block times.

Run: make bench   (or .venv/bin/python -m benchmarks.realistic [--accounts 300] [--fresh 50]
[--block-time 2] [--only plan|apply])

It starts a sandbox of its own in a temporary directory, with anvil mining a block every
``--block-time`` seconds (2), and puts a latency proxy (benchmarks/latency_proxy.py) in front
of each service: 50 ms round trip to dYdX, 5 ms to Vault, 20 ms to JSON-RPC, each new
connection paying two more round trips (TCP and TLS handshakes), all on loopback. What
``provision`` and the naive script run goes through the proxies; setting up the fleet does not.

1. plan: ``--accounts`` accounts are funded and converged, then a converged ``provision plan``
   is timed (median of ``--repeat``) around one run of benchmarks/naive_dydx3.py, both through
   the same proxies;
2. apply: ``--fresh`` new accounts, each with the default API key and ``--named-keys`` named
   ones, applied against a second emulator with v3's rate limits, behind its own 50 ms proxy;
   timed against the floor of benchmarks/realistic_floor.py, computed from the requests the
   emulator counted and the blocks anvil mined during the run. The apply starts right after a
   block, so every run meets the same phase: the floor then holds almost a whole block's wait.

It prints the two figures in a fixed form, the floor's parts, and what 12 s blocks would make
of them. Timings depend on the machine and what else runs on it: the figures are the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import aiohttp

import provisioner  # noqa: F401  (the Python 3.11 import fix, before web3/eth libraries)
from benchmarks import fleet
from benchmarks.latency_proxy import LatencyProxies, Link, latency_proxies
from benchmarks.measure import Measured, median, run
from benchmarks.ratelimit_floor import floor_from_counts
from benchmarks.realistic_floor import ApplyFloor, Latencies, periodic_blocks
from benchmarks.strict_emulator import StrictEmulator
from provisioner.sandbox.control import Sandbox, SandboxConfig, SandboxInfo

PROVISION = str(Path(sys.executable).parent / "provision")
WAN = Latencies(dydx=0.050, vault=0.005, rpc=0.020)
CONNECT_RTTS = 2  # TCP, then TLS 1.3: what a new https connection costs before its request
MAINNET_BLOCK_S = 12.0
CONFIRMATIONS = 2  # the sandbox network's, which apply waits for (and the emulators use)


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BlockWatch:
    """When each block appears: anvil pushes every new head over a websocket subscription
    (``eth_subscribe`` newHeads, not through a proxy), timestamped as it arrives. Polling for
    them instead cost the benchmark's process (the proxies' too) and anvil a request every few
    ms, CPU the run it measures then did not have."""

    def __init__(self, rpc_url: str) -> None:
        self._url = "ws" + rpc_url.removeprefix("http")
        self._seen: list[tuple[int, float]] = []
        self._new = threading.Condition()
        self._subscribed = threading.Event()
        self._failed: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> BlockWatch:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._watch(), self._loop)
        if not self._subscribed.wait(30):
            raise SystemExit(f"no newHeads subscription at {self._url}: {self._failed}")
        return self

    def __exit__(self, *_exc: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _stop(self) -> None:
        """The subscription's task cancelled and awaited on its own loop: its websocket and
        session close there."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch(self) -> None:
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(self._url) as ws:
                await ws.send_json(body)
                async for message in ws:
                    seen = time.perf_counter()
                    data = json.loads(message.data)
                    if data.get("id") == 1:
                        self._subscribed.set()
                        continue
                    number = int(data["params"]["result"]["number"], 16)
                    with self._new:
                        if not self._seen or number > self._seen[-1][0]:
                            self._seen.append((number, seen))
                            self._new.notify_all()
        except Exception as exc:  # noqa: BLE001 - said by __enter__ or next_block
            self._failed = exc
            self._subscribed.set()
            with self._new:
                self._new.notify_all()

    def next_block(self, timeout: float = 60.0) -> tuple[int, float]:
        with self._new:
            count = len(self._seen)
            if not self._new.wait_for(lambda: len(self._seen) > count or self._failed, timeout):
                raise SystemExit(f"anvil mined no block in {timeout:g} s")
            if self._failed is not None:
                raise SystemExit(f"the newHeads subscription failed: {self._failed}")
            return self._seen[-1]

    def since(self, start: float) -> list[tuple[int, float]]:
        """(block number, seconds after ``start``) of each block seen after ``start``."""
        with self._new:
            return [(n, t - start) for n, t in self._seen if t >= start]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=300, help="converged accounts to plan")
    parser.add_argument("--fresh", type=int, default=50, help="new accounts applied")
    parser.add_argument("--named-keys", type=int, default=2, help="API keys besides the default")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each plan (median)")
    parser.add_argument("--block-time", type=float, default=2.0, help="anvil's, in seconds")
    parser.add_argument("--parallelism", type=int, default=None, help="plan/apply --parallelism")
    parser.add_argument(
        "--only", choices=("plan", "apply"), default=None, help="measure one figure alone"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dydx-realistic-") as tmp:
        box = Sandbox(SandboxConfig.from_env(str(Path(tmp) / "sandbox"), _sandbox_env(args)))
        say(f"starting a sandbox in {box.dir}, a block every {args.block_time:g} s")
        info = box.up()
        strict = StrictEmulator(info.rpc_url, Path(tmp))
        try:
            lines = _benchmarks(args, info, strict, Path(tmp))
        finally:
            strict.stop()
            box.down()
    print("\n".join(lines))
    print(
        f"\n(whole run: {time.perf_counter() - started:.0f} s;"
        f" load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    return 0


def _sandbox_env(args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    return {
        **env,
        "SANDBOX_RATE_LIMITS": "relaxed",
        "SANDBOX_CONFIRMATIONS": str(CONFIRMATIONS),
        "SANDBOX_BLOCK_TIME": f"{args.block_time:g}",
    }


def _benchmarks(
    args: argparse.Namespace, info: SandboxInfo, strict: StrictEmulator, tmp: Path
) -> list[str]:
    direct = {**os.environ, **info.env(), "NO_COLOR": "1"}
    out = [
        f"dydx-provisioner realistic benchmarks: {os.cpu_count()} CPUs,"
        f" Python {platform.python_version()}, {platform.machine()}; blocks every"
        f" {args.block_time:g} s; round trips: dYdX {WAN.dydx * 1000:g} ms, Vault"
        f" {WAN.vault * 1000:g} ms, JSON-RPC {WAN.rpc * 1000:g} ms, and {CONNECT_RTTS} more"
        " for each new connection (TCP, TLS); load average at start"
        f" {os.getloadavg()[0]:.1f}",
    ]
    with latency_proxies() as proxies, BlockWatch(info.rpc_url) as blocks:
        far = {
            **direct,
            "VAULT_ADDR": proxies.add(info.vault_addr, Link(WAN.vault, CONNECT_RTTS)),
            "ETH_RPC_URL": proxies.add(info.rpc_url, Link(WAN.rpc, CONNECT_RTTS)),
            "DYDX_API_URL": proxies.add(info.api_url, Link(WAN.dydx, CONNECT_RTTS)),
        }
        lines, figures = [], []
        if args.only != "apply":
            plan_lines, plan_figure = _plan_vs_naive(args, info, direct, far, proxies, tmp)
            lines, figures = lines + plan_lines, [*figures, plan_figure]
        if args.only != "plan":
            strict_far = {
                **far,
                "DYDX_API_URL": proxies.add(strict.url, Link(WAN.dydx, CONNECT_RTTS)),
            }
            apply_lines, apply_figure = _apply(args, info, strict, strict_far, blocks, tmp)
            lines, figures = lines + apply_lines, [*figures, apply_figure]
    return [*out, *lines, "", *figures]


def _seed(count: int, info: SandboxInfo, env: Mapping[str, str], tmp: Path) -> Path:
    accounts = fleet.new_fleet(count, f"real-{uuid.uuid4().hex[:8]}")
    say(f"funding {count} new accounts and storing their keys in Vault")
    fleet.prepare(info, accounts)
    manifest = fleet.write_manifest(tmp / f"plan-{count}.yaml", accounts)
    say(f"converging them on loopback: provision apply of {count} accounts")
    seeded = run([PROVISION, "apply", "-f", str(manifest), "--auto-approve", "--parallelism",
                  str(min(count, 150))], env)  # fmt: skip
    if seeded.rc != 0:
        raise SystemExit(f"seeding apply failed ({seeded.rc}):\n{seeded.stderr[-3000:]}")
    say(f"seeded in {seeded.seconds:.0f} s")
    return manifest


def _flags(args: argparse.Namespace) -> list[str]:
    return ["--parallelism", str(args.parallelism)] if args.parallelism else []


def _plan(manifest: Path, env: Mapping[str, str], args: argparse.Namespace) -> Measured:
    measured = run([PROVISION, "plan", "-f", str(manifest), "--detailed-exitcode", *_flags(args)],
                   env)  # fmt: skip
    if measured.rc != 0:
        raise SystemExit(
            f"plan of {manifest.name} is not converged ({measured.rc}):\n"
            f"{measured.stdout[-2000:]}{measured.stderr[-2000:]}"
        )
    return measured


def _plan_vs_naive(
    args: argparse.Namespace,
    info: SandboxInfo,
    direct: Mapping[str, str],
    far: Mapping[str, str],
    proxies: LatencyProxies,
    tmp: Path,
) -> tuple[list[str], str]:
    n = args.accounts
    manifest = _seed(n, info, direct, tmp)
    say(f"plan of {n} converged accounts through the proxies, {args.repeat} runs around one naive")
    before = proxies.connections()
    ours = [_plan(manifest, far, args)]
    opened = proxies.connections() - before
    naive = run([sys.executable, "-m", "benchmarks.naive_dydx3", "-f", str(manifest)], far)
    if naive.rc != 0:
        raise SystemExit(f"the naive script failed:\n{naive.stderr[-3000:]}")
    naive_opened = proxies.connections() - before - opened
    ours += [_plan(manifest, far, args) for _ in range(args.repeat - 1)]
    plan_s = median([m.seconds for m in ours])
    ratio = naive.seconds / plan_s
    lines = [
        "",
        f"1. Converged plan of {n} accounts, through the proxies",
        f"   provision plan --detailed-exitcode: {plan_s:6.2f} s  (median of {len(ours)}; runs"
        f" {', '.join(f'{m.seconds:.2f}' for m in ours)}; CPU {median([m.cpu_seconds for m in ours]):.2f} s;"
        f" {opened} connections opened; peak RSS {max(m.peak_rss_mb for m in ours):.0f} MB)",
        f"   naive dydx3 script, sequential:    {naive.seconds:6.2f} s  "
        f"({naive.stdout.strip().splitlines()[-1]}; CPU {naive.cpu_seconds:.1f} s;"
        f" {naive_opened} connections opened)",
        f"   => {ratio:.1f}x  (target >= 50x)",
    ]
    return (
        lines,
        f"realistic plan: {n} converged accounts, {ratio:.1f}x faster than the naive script",
    )


def _apply(
    args: argparse.Namespace,
    info: SandboxInfo,
    strict: StrictEmulator,
    env: Mapping[str, str],
    blocks: BlockWatch,
    tmp: Path,
) -> tuple[list[str], str]:
    n = args.fresh
    keys = ["default", *(f"bot-{i:02d}" for i in range(1, args.named_keys + 1))]
    accounts = fleet.new_fleet(n, f"fresh-{uuid.uuid4().hex[:8]}")
    say(f"funding {n} fresh accounts")
    fleet.prepare(info, accounts)
    manifest = fleet.write_manifest(tmp / f"fresh-{n}.yaml", accounts, api_keys=keys)
    strict.start()  # again: a clean slate of windows and counts after the plan's figures
    say(f"apply of {n} fresh accounts, {len(keys)} API keys each, v3 limits on, after a block")
    blocks.next_block()
    start = time.perf_counter()
    applied = run([PROVISION, "apply", "-f", str(manifest), "--auto-approve", *_flags(args)], env)
    counts = strict.request_counts()
    rejected = strict.count_429()
    if applied.rc != 0:
        raise SystemExit(f"the apply failed ({applied.rc}):\n{applied.stderr[-3000:]}")
    seen = blocks.since(start)
    check = run([PROVISION, "plan", "-f", str(manifest), "--detailed-exitcode"], env)
    floor = ApplyFloor(
        WAN, floor_from_counts(counts, n), tuple(t for _, t in seen), confirmations=CONFIRMATIONS
    )
    took = _blocks_taken(info.rpc_url, seen, {a.address.lower() for a in accounts.accounts})
    took["waited"] = len(seen)  # every block mined while apply ran: confirmations included
    ratio = applied.seconds / floor.seconds
    per_account = ", ".join(f"{r} {c / n:g}" for r, c in sorted(counts.items()) if c)
    lines = [
        "",
        f"2. Full apply of {n} fresh accounts ({len(keys)} API keys each: the default and"
        f" {args.named_keys} named), v3 rate limits on, started right after a block",
        f"   requests per account: {per_account}",
        *(f"   {line}" for line in floor.explain()),
        f"   provision apply: {applied.seconds:.2f} s, CPU {applied.cpu_seconds:.2f} s  (then plan"
        f" --detailed-exitcode: {check.rc}, 0 = converged)",
        f"   its transactions went into {took['blocks']} blocks, at most {took['per_account']} per"
        f" account; the last at {took['last']:.2f} s; {took['waited']:g} blocks mined while it"
        f" ran ({CONFIRMATIONS} confirmations awaited)",
        f"   => {ratio:.2f}x the floor  (target <= 1.2x)",
        f"   429 answers: {rejected}  (target 0)",
        *_at_mainnet_blocks(floor, applied.seconds, took, args.block_time),
    ]
    return lines, f"realistic apply: {n} fresh accounts, {ratio:.2f}x the floor"


def _blocks_taken(
    rpc_url: str, seen: list[tuple[int, float]], senders: set[str]
) -> dict[str, float]:
    """The blocks the run's transactions went into (in all, and at most per account), when the
    last of them came, and how many blocks were mined from the start until then."""
    calls = [("eth_getBlockByNumber", [hex(number), True]) for number, _ in seen]
    per_sender: dict[str, set[int]] = {}
    last, waited = 0.0, 0
    for i, ((number, at), block) in enumerate(
        zip(seen, fleet.rpc_batch(rpc_url, calls), strict=True)
    ):
        for tx in block["transactions"]:
            if tx["from"].lower() in senders:
                per_sender.setdefault(tx["from"].lower(), set()).add(number)
                last, waited = at, i + 1
    used = set().union(*per_sender.values()) if per_sender else set()
    return {
        "blocks": len(used),
        "per_account": max((len(b) for b in per_sender.values()), default=0),
        "last": last,
        "waited": waited,
    }


def _at_mainnet_blocks(
    floor: ApplyFloor, measured: float, took: Mapping[str, float], block_time: float
) -> list[str]:
    """What 12 s blocks would make of the apply figure, from the same phase: a projection that
    takes every block mined while the apply ran (the confirmations it waited for included)
    as a wait; with the sandbox's confirmations, not mainnet's 14."""
    first = floor.blocks_at[0] if floor.blocks_at else block_time
    slow = replace(floor, blocks_at=periodic_blocks(first * MAINNET_BLOCK_S / block_time,
                                                    MAINNET_BLOCK_S))  # fmt: skip
    waited = took["waited"]
    ours = measured + waited * (MAINNET_BLOCK_S - block_time)
    return [
        f"   at {MAINNET_BLOCK_S:g} s blocks (projected, same phase): floor {slow.seconds:.2f} s;"
        f" ours waited through {waited:g} blocks of {block_time:g} s: at {MAINNET_BLOCK_S:g} s"
        f" each, at most about {ours:.0f} s => {ours / slow.seconds:.1f}x."
        " Plan does not depend on the block time (it reads the latest block).",
    ]


if __name__ == "__main__":
    sys.exit(main())
