"""``network:``, a shorthand name (mainnet, sepolia, sandbox) or a block, as a ``NetworkSpec``."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from provisioner.manifest.builder.reader import Reader, Sourced
from provisioner.manifest.interpolate import substitute
from provisioner.manifest.model import NetworkSpec
from provisioner.manifest.positions import NodePath, format_path
from provisioner.networks import BY_CHAIN_ID, MAINNET, SEPOLIA, KnownNetwork

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class _Shorthand:
    known: KnownNetwork
    api_url: str
    rpc_url: str
    confirmations: int | None


SHORTHANDS = {
    "mainnet": _Shorthand(MAINNET, MAINNET.api_url, "${ETH_RPC_URL}", None),
    "sepolia": _Shorthand(SEPOLIA, SEPOLIA.api_url, "${ETH_RPC_URL}", None),
    "sandbox": _Shorthand(SEPOLIA, "${DYDX_API_URL}", "${ETH_RPC_URL}", 2),
}
# Mainnet pays real fees: without a ceiling of its own a transaction may pay at most this much
# per gas (a spike several times the usual; a network block's max_fee_gwei overrides it).
DEFAULT_MAX_FEE_GWEI = {MAINNET.chain_id: Decimal(200)}
GWEI_EXPECTED = 'a fee per gas in gwei such as 150 or "0.5" (> 0, at most 9 decimal places)'


def network(r: Reader, root: dict[str, Any]) -> NetworkSpec | None:
    if isinstance(root.get("network"), str):
        raw = r.get(root, "network", ())
        return _shorthand(r, raw.value, raw.path) if raw is not None else None
    block = r.get_container(root, "network", ())
    return _block(r, block, ("network",)) if block is not None else None


def _shorthand(r: Reader, name: str, path: NodePath) -> NetworkSpec | None:
    short = SHORTHANDS.get(name)
    if short is None:
        return None
    urls = {}
    for field_name, template in (("api_url", short.api_url), ("rpc_url", short.rpc_url)):
        sub = substitute(template, r.env)
        for var in sub.missing:
            r.report(
                path,
                f"network '{name}' takes its {field_name} from {var}, which is not set",
                f"{var} in the environment"
                + (" ('provision sandbox env' prints it)" if name == "sandbox" else "")
                + f", or a network block with {field_name}",
                blocking=False,
            )
        if sub.missing:
            return None
        if not sub.text.startswith(("http://", "https://", "ws://", "wss://")):
            var = template.strip("${}")
            r.report(
                path,
                f"network '{name}' takes its {field_name} from {var}, which is not a URL",
                f"{var} set to an http(s):// URL",
                blocking=False,
            )
            return None
        urls[field_name] = sub.text
    known = short.known
    spec = NetworkSpec(
        name=name,
        chain_id=known.chain_id,
        api_url=urls["api_url"],
        rpc_url=urls["rpc_url"],
        exchange_contract=known.exchange_contract,
        usdc_contract=known.usdc_contract,
        collateral_asset_id=known.collateral_asset_id,
    )
    if short.confirmations is not None:
        spec = replace(spec, confirmations=short.confirmations)
    return replace(spec, max_fee_gwei=DEFAULT_MAX_FEE_GWEI.get(known.chain_id))


def _block(r: Reader, block: dict[str, Any], path: NodePath) -> NetworkSpec | None:
    values: dict[str, Any] = {}
    for key in ("name", "chain_id", "api_url", "rpc_url", "confirmations"):
        if (raw := r.get(block, key, path)) is not None:
            values[key] = raw.value
    if isinstance(values.get("name"), str) and _CONTROL.search(values["name"]):
        # printed in every plan and the pull-request comment: a newline there could forge lines
        r.report(
            (*path, "name"),
            f"network name {values['name']!r} holds a line break or control character",
            "a one-line label",
        )
        values["name"] = None
    for key in ("exchange_contract", "usdc_contract"):
        if (raw := r.get(block, key, path)) is not None:
            values[key] = r.address(raw)
    if (raw := r.get(block, "collateral_asset_id", path)) is not None:
        value = raw.value
        values["collateral_asset_id"] = int(value, 16) if isinstance(value, str) else value
    if (raw := r.get(block, "max_fee_gwei", path)) is not None:
        values["max_fee_gwei"] = _gwei(r, raw)

    chain_id = values.get("chain_id")
    if not isinstance(chain_id, int):
        return None
    known = BY_CHAIN_ID.get(chain_id)
    defaultable = ("exchange_contract", "usdc_contract", "collateral_asset_id")
    missing = [k for k in defaultable if k not in block]
    if known is None and missing:
        r.report(
            (*path, "chain_id"),
            f"chain {chain_id} is not one dYdX v3 ran on, so {', '.join(missing)} "
            "cannot be defaulted",
            "exchange_contract, usdc_contract and collateral_asset_id in the network block "
            "(defaults exist for chains " + ", ".join(str(c) for c in sorted(BY_CHAIN_ID)) + ")",
            blocking=False,
        )
        return None
    for key in defaultable:
        if key not in block and known is not None:
            values[key] = getattr(known, key)
    required = ("name", "api_url", "rpc_url", *defaultable)
    if any(values.get(k) is None for k in required) or (
        "max_fee_gwei" in block and values.get("max_fee_gwei") is None
    ):
        return None
    values.setdefault("max_fee_gwei", DEFAULT_MAX_FEE_GWEI.get(chain_id))
    return NetworkSpec(**values)


def _gwei(r: Reader, raw: Sourced) -> Decimal | None:
    value = raw.value
    number = isinstance(value, str | int | Decimal) and not isinstance(value, bool)
    try:
        gwei = Decimal(value) if number else None
    except ArithmeticError:
        gwei = None
    if gwei is None or not gwei.is_finite() or gwei <= 0 or (gwei * 10**9) % 1:
        r.report(
            raw.path, f"{format_path(raw.path)} {str(value)[:40]!r} is not a fee", GWEI_EXPECTED
        )
        return None
    return gwei
