"""`provision status`: one row per account — onboarded, registered, deposited vs target, keys present."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table

from provisioner.cli.runtime import session_from_args
from provisioner.observe import Derive
from provisioner.status import status_rows


def run(args: argparse.Namespace) -> int:
    r = session_from_args(args)
    # Like plan: a STARK key not in Vault yet (an account onboarded in the web app) is derived in
    # memory with a local signer, so registration and deposits are read, not shown as missing.
    derive = Derive.ALL if getattr(args, "derive", False) else Derive.LOCAL
    statuses = status_rows(r.accounts, r.observe(derive=derive))
    rows = [row.to_dict() for row in statuses]
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
        "key age, next rotation",
    ):
        table.add_column(col)

    def yn(v: object) -> str:
        return "unknown" if v is None else ("yes" if v else "no")

    for row, status in zip(rows, statuses, strict=True):
        key_text = (
            ", ".join(f"{k}{'' if ok else ' (missing)'}" for k, ok in row["api_keys"].items())
            or "-"
        )
        pending = f" (+{row['pending']} pending)" if row["pending"] != "0" else ""
        deposited = "unknown" if row["deposited"] is None else row["deposited"]
        stark = yn(row["stark_key_in_vault"])
        if row["stark_key_derived"]:
            stark = "no (derived from the signer)"
        table.add_row(
            str(row["account"]),
            yn(row["onboarded"]),
            yn(row["registered"]),
            f"{deposited}{pending} / {row['target']}",
            stark,
            key_text,
            status.rotation_text(),
        )
    console = Console(no_color=not sys.stdout.isatty())
    with console.capture() as captured:
        console.print(table)
    sys.stdout.write(r.redactor.redact(captured.get()))
    return 0
