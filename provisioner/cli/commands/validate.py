"""`provision validate`: check a manifest offline; every problem as file:line:col, or a one-line summary.

It needs no environment: what a manifest takes from it (``${VAR}``, a network shorthand's
URLs) is a warning naming what ``plan`` will need, unless ``--strict-env``. ``--format
github`` prints workflow annotations, which GitHub shows inline on a pull request.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from decimal import Decimal
from typing import TextIO

from provisioner.cli.trust import load_policy
from provisioner.errors import ProvisionerError
from provisioner.manifest.diagnostics import Diagnostic, ManifestError, scrub
from provisioner.manifest.loader import load_manifest
from provisioner.manifest.model import Location, Manifest
from provisioner.manifest.needs import EnvNeed, env_needs, with_placeholders
from provisioner.money import format_usdc
from provisioner.redact import Redactor


def run(args: argparse.Namespace) -> int:
    fmt = args.format
    redactor: Redactor = getattr(args, "redactor", None) or Redactor()
    # every line passes the redactor: an interpolated value may be a secret
    with (
        contextlib.redirect_stdout(_Redacting(sys.stdout, redactor)),
        contextlib.redirect_stderr(_Redacting(sys.stderr, redactor)),
    ):
        return _validate(args, fmt, redactor)


class _Redacting(io.TextIOBase):
    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        self._stream = stream
        self._redactor = redactor

    def write(self, text: str) -> int:
        self._stream.write(self._redactor.redact(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def _validate(args: argparse.Namespace, fmt: str, redactor: Redactor) -> int:
    needs = [] if getattr(args, "strict_env", False) else env_needs(args.file)
    try:
        manifest: Manifest | None = load_manifest(
            args.file,
            with_placeholders(needs) if needs else None,
            policy=load_policy(args),
            on_value=redactor.register_interpolated,
        )
        errors: list[Diagnostic] = []
    except ManifestError as exc:
        # a stand-in may fail a check where the real value would not: those are not the manifest's
        needed = {n.location for n in needs}
        manifest, errors = None, [d for d in exc.diagnostics if d.location not in needed]
    except ProvisionerError as exc:  # the file itself: no line to point at
        if fmt == "text":
            raise
        if fmt == "github":
            print(f"::error file={_prop(args.file)}::{_data(str(exc))}")
        else:
            error = {"file": args.file, "line": None, "column": None, "message": str(exc)}
            document = {"valid": False, "file": args.file}
            _print_json({**document, "errors": [{**error, "expected": "", "text": str(exc)}]})
        return 1
    if fmt == "json":
        _json(args.file, manifest, errors, needs)
    elif fmt == "github":
        _github(args.file, manifest, errors, needs)
    else:
        _text(args.file, manifest, errors, needs)
    return 1 if errors else 0


def _text(
    file: str, manifest: Manifest | None, errors: list[Diagnostic], needs: list[EnvNeed]
) -> None:
    for need in needs:
        print(f"{need.location}: warning: {need.message()}", file=sys.stderr)
    for diagnostic in errors:
        print(diagnostic, file=sys.stderr)
    if errors:
        count = len(errors)
        print(f"{file}: {count} error{'s' if count != 1 else ''}", file=sys.stderr)
        return
    print(_summary_line(file, manifest, needs))


def _github(
    file: str, manifest: Manifest | None, errors: list[Diagnostic], needs: list[EnvNeed]
) -> None:
    for need in needs:
        print(_annotation("warning", need.location, need.message()))
    for d in errors:
        text = d.message + (f"; expected {d.expected}" if d.expected else "")
        print(_annotation("error", d.location, scrub(text)))
    if errors:
        print(f"{file}: {len(errors)} error{'s' if len(errors) != 1 else ''}")
    else:
        print(_summary_line(file, manifest, needs))


def _annotation(level: str, at: Location, message: str) -> str:
    """A workflow command: ``::error file=F,line=L,col=C::message``, escaped as GitHub reads it."""
    return f"::{level} file={_prop(at.file)},line={at.line},col={at.column}::{_data(message)}"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _json(
    file: str, manifest: Manifest | None, errors: list[Diagnostic], needs: list[EnvNeed]
) -> None:
    document: dict[str, object] = {"valid": not errors, "file": file}
    if errors:
        document["errors"] = [d.as_dict() for d in errors]
    elif manifest is not None:
        document["summary"] = _summary_data(manifest)
    if needs:
        document["warnings"] = [
            {
                "file": n.location.file,
                "line": n.location.line,
                "column": n.location.column,
                "variable": n.name,
                "message": n.message(),
            }
            for n in needs
        ]
    _print_json(document)


def _print_json(document: dict[str, object]) -> None:
    print(json.dumps(document, indent=2))


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


def _summary_line(file: str, manifest: Manifest | None, needs: list[EnvNeed]) -> str:
    later = ""
    if needs:
        later = f"; plan will need {', '.join(dict.fromkeys(n.name for n in needs))}"
    if manifest is None:
        return f"{file}: valid as far as it can be checked without the environment{later}"
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
    return text + later
