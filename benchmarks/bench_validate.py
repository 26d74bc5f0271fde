"""How long `provision validate` takes on a 1,000-account manifest, against a plain YAML parse.

Run: .venv/bin/python -m benchmarks.bench_validate [--accounts N] [--repeat R]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from eth_utils import to_checksum_address

from provisioner.manifest.loader import load_manifest

ENV = {
    "VAULT_ADDR": "http://127.0.0.1:8200",
    "ETH_RPC_URL": "http://127.0.0.1:8545",
    "DYDX_API_URL": "http://127.0.0.1:8080",
}

HEADER = """\
version: 1
network: sandbox
vault:
  address: ${VAULT_ADDR}
  auth: {method: token}
defaults:
  deposit: "1000"
  secrets: {stark_key: "dydx/{name}/stark"}
  api_keys:
    - {name: default, secret: "dydx/{name}/api/default"}
accounts:
"""

ACCOUNT = """\
  - name: mm-{i:04d}
    address: "{address}"
    signer:
      private_key: {{vault: "signers/{i}#private_key"}}
    deposit: "{deposit}"
    api_keys:
      - name: hedger
        secret: dydx/mm-{i:04d}/api/hedger
"""


def generate(accounts: int) -> str:
    parts = [HEADER]
    for i in range(accounts):
        address = to_checksum_address(f"0x{i + 1:040x}")
        parts.append(ACCOUNT.format(i=i, address=address, deposit=f"{1000 + i}.{i % 1000:03d}25"))
    return "".join(parts)


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    c_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "provision.yaml"
        path.write_text(generate(args.accounts), encoding="utf-8")
        size = path.stat().st_size
        load_manifest(path, ENV)  # warm up: schema compiled, modules imported
        baseline = best_of(args.repeat, lambda: yaml.safe_load(path.read_text(encoding="utf-8")))
        libyaml = best_of(args.repeat, lambda: yaml.load(path.read_bytes(), Loader=c_loader))
        validate = best_of(args.repeat, lambda: load_manifest(path, ENV))
    print(f"manifest:                 {args.accounts} accounts, {size / 1024:.0f} KiB")
    print(f"yaml.safe_load:           {baseline * 1000:8.1f} ms  (baseline, pure-Python PyYAML)")
    print(f"yaml.load(CSafeLoader):   {libyaml * 1000:8.1f} ms  (parse only, libyaml)")
    print(
        f"load_manifest:            {validate * 1000:8.1f} ms  (parse, interpolate, schema, checks)"
    )
    print(f"ratio to safe_load:       {validate / baseline:8.2f}x")
    print(f"ratio to libyaml parse:   {validate / libyaml:8.2f}x")
    verdict = "within" if validate < 1.0 else "OVER"
    print(f"target < 1 s:             {verdict} (best of {args.repeat})")


if __name__ == "__main__":
    main()
