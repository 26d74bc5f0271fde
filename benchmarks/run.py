"""Issue #9's benchmarks on a sandbox of their own: plan speed, rate-limited apply, memory and growth.

Run: make bench   (or .venv/bin/python -m benchmarks.run [--accounts 1000] [--fresh 100]
[--growth-only])

It starts a sandbox in a temporary directory (relaxed rate limits), makes ``--accounts``
new funded accounts and converges them with ``provision apply`` (real: onboarded at the
emulator, registered on chain, deposited, secrets in Vault), then prints three figures,
each a ratio to a baseline measured in this same run:

1. a converged ``provision plan`` of all accounts vs benchmarks/naive_dydx3.py, a
   sequential script with the official dydx3 client that checks the same things;
2. a full ``provision apply`` of ``--fresh`` new accounts against a second emulator on the
   same chain with v3's real rate limits, vs the floor those limits impose on the
   requests it made (benchmarks/ratelimit_floor.py), and the 429s the emulator answered;
   then, once their keys are a minute old, an apply that rotates every named key with no
   overlap (a new key and the old one deleted: two writes each), held to the same floor;
3. the plan's peak memory at ``--accounts``, and its time at 10, 100 and ``--accounts``.

Nothing is cached between runs; the sandbox is removed at the end. Timings depend on the
machine and on what else runs on it: the figures are the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import provisioner  # noqa: F401  (the Python 3.11 import fix, before web3/eth libraries)
from benchmarks import fleet
from benchmarks.measure import Measured, median, run
from benchmarks.ratelimit_floor import floor_from_counts
from benchmarks.strict_emulator import StrictEmulator
from provisioner.sandbox.control import Sandbox, SandboxConfig, SandboxInfo

PROVISION = str(Path(sys.executable).parent / "provision")
SCALES = (10, 100)


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000, help="converged accounts to plan")
    parser.add_argument(
        "--fresh", type=int, default=100, help="new accounts applied under v3 limits"
    )
    parser.add_argument(
        "--named-keys", type=int, default=10, help="API keys per fresh account besides the default"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each plan (median)")
    parser.add_argument("--parallelism", type=int, default=None, help="plan --parallelism")
    parser.add_argument(
        "--growth-only",
        action="store_true",
        help="figure 3 alone (peak RSS and growth), without the naive script or the fresh apply:"
        " for --accounts 10000",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dydx-bench-") as tmp:
        box = Sandbox(SandboxConfig.from_env(str(Path(tmp) / "sandbox"), _sandbox_env()))
        say(f"starting a sandbox in {box.dir}")
        info = box.up()
        strict = StrictEmulator(info.rpc_url, Path(tmp))
        try:
            lines = _benchmarks(args, info, strict, Path(tmp))
        finally:
            strict.stop()
            box.down()
    print("\n".join(lines))
    print(f"\n(whole run: {time.perf_counter() - started:.0f} s)")
    return 0


def _benchmarks(
    args: argparse.Namespace, info: SandboxInfo, strict: StrictEmulator, tmp: Path
) -> list[str]:
    env = {**os.environ, **info.env(), "NO_COLOR": "1"}
    out = [
        f"dydx-provisioner benchmarks: {os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" {platform.machine()}",
    ]
    seeded = _seed(args.accounts, info, env, tmp)
    out.append(
        f"seed: {args.accounts} accounts funded and converged by one provision apply "
        f"(relaxed limits, --parallelism 64) in {seeded.seconds:.0f} s"
    )
    if args.growth_only:
        say(f"plan of {args.accounts} converged accounts, {args.repeat} runs (for the peak RSS)")
        ours = [_plan(args.accounts, env, tmp, args.parallelism) for _ in range(args.repeat)]
        growth, _after_start = _growth(args, env, tmp, max(m.peak_rss_mb for m in ours))
        runs = ", ".join(f"{m.seconds:.2f}" for m in ours)
        return [*out, "", f"provision plan of {args.accounts} accounts: runs {runs} s", *growth]
    plan_lines, growth_lines = _plan_vs_naive(args, env, tmp)
    return out + plan_lines + _apply_under_limits(args, info, strict, env, tmp) + growth_lines


def _sandbox_env() -> dict[str, str]:
    """The sandbox's knobs for the benchmark: free ports, relaxed limits, quick confirmations."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    return {**env, "SANDBOX_RATE_LIMITS": "relaxed", "SANDBOX_CONFIRMATIONS": "2"}


def _seed(count: int, info: SandboxInfo, env: Mapping[str, str], tmp: Path) -> Measured:
    accounts = fleet.new_fleet(count, f"bench-{uuid.uuid4().hex[:8]}")
    say(f"funding {count} new accounts and storing their keys in Vault")
    fleet.prepare(info, accounts)
    full = fleet.write_manifest(tmp / f"plan-{count}.yaml", accounts)
    for n in SCALES:
        if n < count:
            fleet.write_manifest(tmp / f"plan-{n}.yaml", accounts, accounts=accounts.accounts[:n])
    say(f"converging them: provision apply of {count} accounts (takes a few minutes)")
    seeded = run(
        [PROVISION, "apply", "-f", str(full), "--auto-approve", "--parallelism", "64"], env
    )
    if seeded.rc != 0:
        raise SystemExit(f"seeding apply failed ({seeded.rc}):\n{seeded.stderr[-3000:]}")
    return seeded


def _plan(count: int, env: Mapping[str, str], tmp: Path, parallelism: int | None) -> Measured:
    argv = [PROVISION, "plan", "-f", str(tmp / f"plan-{count}.yaml"), "--detailed-exitcode"]
    if parallelism:
        argv += ["--parallelism", str(parallelism)]
    measured = run(argv, env)
    if measured.rc != 0:
        raise SystemExit(
            f"plan of {count} accounts is not converged ({measured.rc}):\n"
            f"{measured.stdout[-2000:]}{measured.stderr[-2000:]}"
        )
    return measured


def _plan_vs_naive(
    args: argparse.Namespace, env: Mapping[str, str], tmp: Path
) -> tuple[list[str], list[str]]:
    n = args.accounts
    say(f"plan of {n} converged accounts, {args.repeat} runs, around one naive dydx3 run")
    ours = [_plan(n, env, tmp, args.parallelism)]
    naive = run(
        [sys.executable, "-m", "benchmarks.naive_dydx3", "-f", str(tmp / f"plan-{n}.yaml")], env
    )
    if naive.rc != 0:
        raise SystemExit(f"the naive script failed:\n{naive.stderr[-3000:]}")
    ours += [_plan(n, env, tmp, args.parallelism) for _ in range(args.repeat - 1)]
    plan_s = median([m.seconds for m in ours])
    naive_converged = naive.stdout.strip().splitlines()[-1]
    lines = [
        "",
        f"1. Converged plan of {n} accounts (relaxed emulator: a converged account's reads",
        "   are private, per-account budgets, so v3's limits do not bind here)",
        f"   provision plan --detailed-exitcode: {plan_s:6.2f} s  (median of {len(ours)};"
        f" runs {', '.join(f'{m.seconds:.2f}' for m in ours)})",
        f"   naive dydx3 script, sequential:    {naive.seconds:6.2f} s  ({naive_converged})",
        f"   => provision plan is {naive.seconds / plan_s:.1f}x faster  (target >= 20x)",
    ]
    growth, after_start = _growth(args, env, tmp, max(m.peak_rss_mb for m in ours))
    naive_work = float(naive.stderr.rsplit("work seconds:", 1)[1].split()[0])
    lines.append(
        f"   without interpreter start and imports (~{plan_s - after_start:.1f} s of ours; the"
        f" naive script's include dydx3, web3 and sympy): {after_start:.2f} s vs {naive_work:.2f} s"
        f" => {naive_work / after_start:.1f}x"
    )
    return lines, growth


def _growth(
    args: argparse.Namespace, env: Mapping[str, str], tmp: Path, peak: float
) -> tuple[list[str], float]:
    """Figure 3's lines, and the plan time of all accounts after start-up (for figure 1)."""
    sizes = [k for k in SCALES if k < args.accounts] + [args.accounts]
    say(f"plan time at {', '.join(map(str, sizes))} accounts, in one process")
    grown = run(
        [
            sys.executable,
            "-m",
            "benchmarks.plan_growth",
            *(str(tmp / f"plan-{k}.yaml") for k in sizes),
            "--repeat",
            str(args.repeat),
        ],
        env,
    )
    if grown.rc != 0:
        raise SystemExit(f"plan_growth failed:\n{grown.stderr[-3000:]}")
    times = {int(k): v for k, v in json.loads(grown.stdout).items()}
    marginal = [
        (b, (times[b] - times[a]) / (b - a) * 1000) for a, b in zip(sizes, sizes[1:], strict=False)
    ]
    lines = [
        "",
        "3. Memory and growth of provision plan",
        f"   peak RSS of the whole process at {args.accounts} accounts: {peak:.0f} MB"
        "  (target <= 200 MB)",
        "   plan time after start-up (median of "
        f"{args.repeat}, in one process): "
        + ", ".join(
            f"{k} accounts {times[k]:.2f} s ({times[k] / k * 1000:.1f} ms each)" for k in sizes
        ),
    ]
    if len(marginal) > 1 and marginal[0][1] > 0:
        a, b = marginal[0][1], marginal[-1][1]
        lines.append(
            f"   cost of each added account: {a:.2f} ms from {sizes[0]} to {sizes[1]},"
            f" {b:.2f} ms from {sizes[-2]} to {sizes[-1]}"
            f"  => growth {b / a:.2f}x per account (1 = linear; quadratic would be ~{sizes[-1] // sizes[1]}x)"
        )
    return lines, times[args.accounts]


def _apply_under_limits(
    args: argparse.Namespace,
    info: SandboxInfo,
    strict: StrictEmulator,
    env: Mapping[str, str],
    tmp: Path,
) -> list[str]:
    n = args.fresh
    keys = ["default", *(f"bot-{i:02d}" for i in range(1, args.named_keys + 1))]
    accounts = fleet.new_fleet(n, f"fresh-{uuid.uuid4().hex[:8]}")
    say(f"funding {n} fresh accounts; starting an emulator with v3's real rate limits")
    fleet.prepare(info, accounts)
    manifest = fleet.write_manifest(tmp / f"fresh-{n}.yaml", accounts, api_keys=keys)
    strict.start()
    strict_env = {**env, "DYDX_API_URL": strict.url}
    say(f"apply of {n} fresh accounts, {len(keys)} API keys each, under v3 limits")
    applied = run(
        [PROVISION, "apply", "-f", str(manifest), "--auto-approve", "--parallelism", str(n)],
        strict_env,
    )
    counts = strict.request_counts()
    rejected = strict.count_429()
    if applied.rc != 0:
        raise SystemExit(f"the rate-limited apply failed ({applied.rc}):\n{applied.stderr[-3000:]}")
    check = run([PROVISION, "plan", "-f", str(manifest), "--detailed-exitcode"], strict_env)
    floor = floor_from_counts(counts, n)
    per_account = ", ".join(
        f"{route} {count / n:g}" for route, count in sorted(counts.items()) if count
    )
    rotated = _rotation_under_limits(args, strict, strict_env, tmp, accounts, keys)
    return [
        "",
        f"2. Full apply of {n} fresh accounts ({len(keys)} API keys each: the default and"
        f" {args.named_keys} named), v3 rate limits on",
        f"   requests per account: {per_account}",
        *(f"   {line}" for line in floor.explain()),
        f"   provision apply --parallelism {n}: {applied.seconds:.1f} s"
        f"  (then plan --detailed-exitcode: {check.rc}, 0 = converged)",
        (
            f"   => {applied.seconds / floor.seconds:.3f}x the floor  (target <= 1.1x)"
            if floor.seconds
            else "   => so few requests that the limits impose no wait: no ratio"
        ),
        f"   429 answers from the rate-limited emulator: {rejected}  (target 0)",
        *rotated,
    ]


ROTATE_AFTER = 60  # seconds: past it, every key of the fresh apply is due, and its windows over


def _rotation_under_limits(
    args: argparse.Namespace,
    strict: StrictEmulator,
    strict_env: Mapping[str, str],
    tmp: Path,
    accounts: fleet.Fleet,
    keys: list[str],
) -> list[str]:
    """Rotation writes count against v3's limits like every other write: an apply that rotates
    every named key of the fresh accounts, under the same limits, vs the same floor."""
    n = args.fresh
    if args.named_keys < 1:
        return []
    manifest = fleet.write_manifest(
        tmp / f"rotate-{n}.yaml",
        accounts,
        api_keys=keys,
        rotation={"rotate_after": f"{ROTATE_AFTER}s", "rotation_overlap": "0s"},
    )
    say(f"waiting {ROTATE_AFTER + 1} s: the keys become due, the accounts' write windows end")
    time.sleep(ROTATE_AFTER + 1)
    before, rejected_before = strict.request_counts(), strict.count_429()
    say(f"apply rotating {args.named_keys} named keys of each of {n} accounts, under v3 limits")
    applied = run(
        [PROVISION, "apply", "-f", str(manifest), "--auto-approve", "--parallelism", str(n)],
        strict_env,
    )
    after = strict.request_counts()
    counts = {route: after[route] - before.get(route, 0) for route in after}
    if applied.rc != 0:
        raise SystemExit(f"the rotating apply failed ({applied.rc}):\n{applied.stderr[-3000:]}")
    floor = floor_from_counts(counts, n)
    creates, deletes = counts.get("POST /v3/api-keys", 0), counts.get("DELETE /v3/api-keys", 0)
    return [
        f"   rotation of every named key ({args.named_keys} per account, no overlap): "
        f"{creates / n:g} created and {deletes / n:g} deleted per account",
        *(f"   {line}" for line in floor.explain()),
        f"   provision apply --parallelism {n}: {applied.seconds:.1f} s",
        (
            f"   => {applied.seconds / floor.seconds:.3f}x the floor  (target <= 1.1x)"
            if floor.seconds
            else "   => so few requests that the limits impose no wait: no ratio"
        ),
        f"   429 answers: {strict.count_429() - rejected_before}  (target 0)",
    ]


if __name__ == "__main__":
    sys.exit(main())
