"""`provision validate`: check a manifest offline; every problem as file:line:col, or a one-line summary."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal

from provisioner.cli.trust import load_policy
from provisioner.errors import ProvisionerError
from provisioner.manifest.diagnostics import ManifestError
from provisioner.manifest.loader import load_manifest
from provisioner.manifest.model import Manifest
from provisioner.money import format_usdc
from provisioner.redact import Redactor


def run(args: argparse.Namespace) -> int:
    as_json = args.format == "json"
    redactor: Redactor = getattr(args, "redactor", None) or Redactor()
    try:
        manifest = load_manifest(
            args.file, policy=load_policy(args), on_value=redactor.register_interpolated
        )
    except ManifestError as exc:
        if as_json:
            errors = [d.as_dict() for d in exc.diagnostics]
            _print_json({"valid": False, "file": args.file, "errors": errors}, redactor)
        else:
            for diagnostic in exc.diagnostics:
                print(redactor.redact(str(diagnostic)), file=sys.stderr)
            count = len(exc.diagnostics)
            print(f"{args.file}: {count} error{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    except ProvisionerError as exc:
        if not as_json:
            raise
        error = {
            "file": args.file,
            "line": None,
            "column": None,
            "message": str(exc),
            "expected": "",
        }
        _print_json(
            {"valid": False, "file": args.file, "errors": [{**error, "text": str(exc)}]}, redactor
        )
        return 1
    if as_json:
        _print_json(
            {"valid": True, "file": args.file, "summary": _summary_data(manifest)}, redactor
        )
    else:
        print(redactor.redact(_summary_line(manifest)))
    return 0


def _summary_data(manifest: Manifest) -> dict[str, object]:
    accounts = manifest.accounts
    return {
        "accounts": len(accounts),
        "network": manifest.network.name,
        "chain_id": manifest.network.chain_id,
        "total_deposit": format_usdc(sum((a.deposit for a in accounts), start=Decimal(0))),
        "api_keys": sum(len(a.api_keys) for a in accounts),
        "import_only": sum(1 for a in accounts if a.signer is None),
    }


def _summary_line(manifest: Manifest) -> str:
    data = _summary_data(manifest)
    n = data["accounts"]
    keys = data["api_keys"]
    text = (
        f"{manifest.path}: valid, {n} account{'s' if n != 1 else ''} on {data['network']} "
        f"(chain {data['chain_id']}), {data['total_deposit']} USDC to have deposited in total, "
        f"{keys} API key{'s' if keys != 1 else ''}"
    )
    if data["import_only"]:
        text += f", {data['import_only']} import-only"
    return text


def _print_json(document: dict[str, object], redactor: Redactor) -> None:
    print(redactor.redact(json.dumps(document, indent=2)))
