"""``python -m provisioner.sandbox.emulator``: run the dYdX v3 API emulator until SIGTERM.

Ready when ``GET /v3/time`` answers 200. Logs one line per request on stderr and
never prints a secret.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import provisioner  # noqa: F401  (the Python 3.11 import fix, before web3/eth libraries)
from provisioner.sandbox.emulator.app import create_app
from provisioner.sandbox.emulator.config import DYDX_CONFIRMATIONS, EmulatorConfig
from provisioner.sandbox.emulator.runtime import Emulator

log = logging.getLogger("emulator")


def parse_args(argv: list[str] | None = None) -> EmulatorConfig:
    p = argparse.ArgumentParser(prog="python -m provisioner.sandbox.emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--db", type=Path, required=True, help="SQLite file (created if missing)")
    p.add_argument("--rpc-url", required=True, help="Ethereum JSON-RPC of the sandbox chain")
    p.add_argument("--chain-id", type=int, default=11155111, help="network id = EIP-712 chainId")
    p.add_argument("--confirmations", type=int, default=DYDX_CONFIRMATIONS)
    p.add_argument("--rate-limits", choices=("strict", "relaxed"), default="strict")
    p.add_argument("--admin", action="store_true", help="serve /admin/* (faults, reset, stats)")
    p.add_argument("--poll-interval", type=float, default=0.5, help="seconds between chain polls")
    p.add_argument(
        "--require-wallet-history",
        action="store_true",
        help="refuse onboarding of wallets with no transactions, ETH or USDC, as dYdX did",
    )
    p.add_argument("--exchange-contract", help="override the network's StarkPerpetual address")
    p.add_argument("--usdc-contract", help="override the network's USDC address")
    p.add_argument(
        "--collateral-asset-id", type=lambda s: int(s, 0), help="override the USDC asset id"
    )
    p.add_argument(
        "--fact-registry-contract", help="override the network's fast-withdrawal fact registry"
    )
    a = p.parse_args(argv)
    if a.confirmations < 0:
        p.error("--confirmations must be >= 0")
    if a.poll_interval <= 0:
        p.error("--poll-interval must be > 0")
    config = EmulatorConfig(
        db_path=a.db,
        rpc_url=a.rpc_url,
        chain_id=a.chain_id,
        host=a.host,
        port=a.port,
        confirmations=a.confirmations,
        strict_rate_limits=a.rate_limits == "strict",
        admin=a.admin,
        poll_interval_s=a.poll_interval,
        require_wallet_history=a.require_wallet_history,
        exchange_contract=a.exchange_contract,
        usdc_contract=a.usdc_contract,
        collateral_asset_id=a.collateral_asset_id,
        fact_registry_contract=a.fact_registry_contract,
    )
    try:
        config.network_exchange_contract  # noqa: B018  (fails early for an unknown chain)
        config.network_fact_registry_contract  # noqa: B018
    except ValueError as exc:
        p.error(str(exc))
    return config


async def serve(config: EmulatorConfig) -> None:
    from aiohttp import web

    app = create_app(Emulator.open(config))
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    log.info(
        "dYdX v3 emulator on http://%s:%d (chain %d, %d confirmations, %s rate limits%s)",
        config.host,
        config.port,
        config.chain_id,
        config.confirmations,
        "strict" if config.strict_rate_limits else "relaxed",
        ", admin on" if config.admin else "",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    config = parse_args(argv)
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        log.error("cannot serve on %s:%d: %s", config.host, config.port, exc)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
