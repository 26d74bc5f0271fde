"""`provision status`: one row per account — onboarded, registered, deposited vs target, keys present."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from provisioner.cli.runtime import start_run
from provisioner.money import format_usdc, from_base_units
from provisioner.plan.planner import API_FIELDS


def run(args: argparse.Namespace) -> int:
    r = start_run(args)
    facts = r.observe()
    rows: list[dict[str, Any]] = []
    for spec in r.accounts:
        f = facts.account(spec.name)
        keys = {
            name: bool(
                e.exists
                and e.fields >= API_FIELDS
                and (f.dydx_api_keys is None or e.get("key") in f.dydx_api_keys)
            )
            for name, e in f.api_secrets
        }
        rows.append(
            {
                "account": spec.name,
                "address": spec.address,
                "onboarded": f.user_exists,
                "registered": f.stark_key_owner is not None
                and f.stark_key_owner.lower() == spec.address.lower(),
                "deposited": format_usdc(from_base_units(f.deposited)),
                "pending": format_usdc(
                    from_base_units(f.pending_deposits + f.unconfirmed_deposits)
                ),
                "target": format_usdc(spec.deposit),
                "stark_key_in_vault": f.stark_secret.exists,
                "api_keys": keys,
            }
        )
    if args.format == "json":
        sys.stdout.write(r.redactor.redact(json.dumps({"accounts": rows}, indent=2)) + "\n")
        return 0
    table = Table(title=f"{r.manifest.path} on {r.manifest.network.name}")
    for col in (
        "account",
        "onboarded",
        "registered",
        "deposited / target",
        "STARK key",
        "API keys",
    ):
        table.add_column(col)

    def yn(v: object) -> str:
        return "unknown" if v is None else ("yes" if v else "no")

    for row in rows:
        key_text = (
            ", ".join(f"{k}{'' if ok else ' (missing)'}" for k, ok in row["api_keys"].items())
            or "-"
        )
        pending = f" (+{row['pending']} pending)" if row["pending"] != "0" else ""
        table.add_row(
            str(row["account"]),
            yn(row["onboarded"]),
            yn(row["registered"]),
            f"{row['deposited']}{pending} / {row['target']}",
            yn(row["stark_key_in_vault"]),
            key_text,
        )
    console = Console(no_color=not sys.stdout.isatty())
    with console.capture() as captured:
        console.print(table)
    sys.stdout.write(r.redactor.redact(captured.get()))
    return 0
