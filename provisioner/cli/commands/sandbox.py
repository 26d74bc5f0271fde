"""`provision sandbox up | env | status | down`."""

from __future__ import annotations

import argparse
import shlex
import sys

from rich.console import Console
from rich.table import Table

from provisioner.sandbox.control import Sandbox, SandboxConfig


def run(args: argparse.Namespace) -> int:
    sandbox = Sandbox(SandboxConfig.from_env(args.dir))
    if args.action == "up":
        info = sandbox.up(log=lambda m: print(m, file=sys.stderr))
        print(
            f'sandbox up in {info.dir}; load its environment with: eval "$(provision sandbox env)"',
            file=sys.stderr,
        )
        return 0
    if args.action == "env":
        status = sandbox.status()
        info = sandbox.info()
        for name, value in info.env().items():
            part = {
                "VAULT_ADDR": "vault",
                "VAULT_TOKEN": "vault",
                "ETH_RPC_URL": "anvil",
                "DYDX_API_URL": "emulator",
            }[name]
            if status[part]["running"]:
                print(f"export {name}={shlex.quote(value)}")
            else:
                print(f"# {name}: {part} not started")
        return 0
    if args.action == "status":
        status = sandbox.status()
        table = Table(title=f"sandbox in {sandbox.dir}")
        for col in ("part", "state", "pid", "url", "log"):
            table.add_column(col)
        for part, s in status.items():
            state = "ready" if s["ready"] else ("not answering" if s["running"] else "stopped")
            table.add_row(part, state, str(s["pid"] or "-"), str(s["url"] or "-"), str(s["log"]))
        Console().print(table)
        return 0 if all(s["ready"] for s in status.values()) else 1
    stopped = sandbox.down()
    print(
        f"sandbox down ({', '.join(stopped) or 'nothing was running'}); removed {sandbox.dir}",
        file=sys.stderr,
    )
    return 0
