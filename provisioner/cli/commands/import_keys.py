"""`provision import --account NAME --local-storage EXPORT.json`: store keys taken from the dYdX web app.

For desks that keep the Ethereum key offline: the STARK key pair and the default API
key come from the web app's local storage, are checked (locally, then against dYdX)
and written to the account's Vault destinations. No Ethereum key is read.
"""

from __future__ import annotations

import argparse
import sys

from provisioner.cli.runtime import at_exit, stderr_logger
from provisioner.cli.trust import load_policy
from provisioner.connections import connect
from provisioner.custody.importer import ImportResult, import_web_app_keys
from provisioner.custody.local_storage import load_export
from provisioner.errors import ProvisionerError
from provisioner.manifest.loader import load_manifest
from provisioner.manifest.model import AccountSpec, Manifest
from provisioner.redact import Redactor


def run(args: argparse.Namespace) -> int:
    # the run's one redactor (main's), so its unexpected-error path masks these secrets too
    redactor: Redactor = getattr(args, "redactor", None) or Redactor()
    manifest = load_manifest(
        args.file, policy=load_policy(args), on_value=redactor.register_interpolated
    )
    spec = _account(manifest, args.account)
    try:
        keys = load_export(args.local_storage, spec.address, redactor.register)
        conn = connect(
            manifest,
            redactor=redactor,
            log=stderr_logger(getattr(args, "verbose", 0), redactor),
            revoke_vault_token=not getattr(args, "keep_vault_token", False),
        )
        at_exit(args, conn.close)
        result = import_web_app_keys(
            spec,
            keys,
            vault=conn.vault,
            dydx=conn.dydx,
            network=manifest.network.name,
            source=args.local_storage,
        )
    except ProvisionerError as exc:
        # Our messages never quote a secret; the redactor is the second line of defence.
        raise ProvisionerError(redactor.redact(str(exc))) from None
    sys.stdout.write(redactor.redact(_report(spec, result, keys.stark.public_key_hex, args.file)))
    return 0


def _account(manifest: Manifest, name: str) -> AccountSpec:
    try:
        return manifest.account(name)
    except KeyError:
        known = ", ".join(a.name for a in manifest.accounts)
        raise ProvisionerError(
            f"--account {name}: no such account in {manifest.path}; expected one of: {known}"
        ) from None


def _report(spec: AccountSpec, result: ImportResult, stark_public: str, manifest: str) -> str:
    lines = [
        f"Imported the web app's keys for {spec.name} ({spec.address}), "
        f"dYdX position {result.account.position_id}:"
    ]
    for s in result.secrets:
        state = f"written (version {s.version})" if s.written else "already there, unchanged"
        lines.append(f"  {s.what} -> {s.path}: {state}")
    lines.append(
        f"Checked: the STARK public key {stark_public[:12]}… belongs to its private key and is "
        "dYdX's for this account; the API key works (GET /v3/accounts/:id)."
    )
    if spec.signer is None:
        lines.append(
            f"Next: provision plan -f {manifest} (steps that need the Ethereum key stay blocked)."
        )
    return "\n".join(lines) + "\n"
