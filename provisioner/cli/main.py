"""`provision` command line: argument parsing and dispatch only.

Each subcommand lives in ``provisioner.cli.commands.<name>`` and exposes
``run(args) -> int``. Exit codes: 0 success / nothing to do, 1 error,
2 changes pending (``plan --detailed-exitcode``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from provisioner import __version__
from provisioner.cli.logs import redacted_logging
from provisioner.cli.output.lines import Lines, printable
from provisioner.errors import ProvisionerError
from provisioner.plan.render import COMPACT_FROM
from provisioner.redact import Redactor

DEFAULT_MANIFEST = "provision.yaml"
_MODULES = {"import": "import_keys"}  # `import` is a Python keyword


def _manifest_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f",
        "--file",
        default=DEFAULT_MANIFEST,
        metavar="FILE",
        help=f"manifest to read (default: {DEFAULT_MANIFEST})",
    )
    p.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="accept plain http:// endpoints on hosts that are not loopback (Vault, RPC, dYdX, signers)",
    )


def _vault_token_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keep-vault-token",
        action="store_true",
        help="do not revoke, at the end of the run, the Vault token a login obtained",
    )


def _untrusted_args(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "untrusted manifests",
        "for plans of pull requests nobody has reviewed yet: endpoints pinned outside the "
        "manifest, only allowed variables, no signer resolved, no secret value read",
    )
    group.add_argument(
        "--untrusted-manifest",
        action="store_true",
        default=os.environ.get("PROVISION_UNTRUSTED_MANIFEST") == "1",
        help="treat the manifest as untrusted (also PROVISION_UNTRUSTED_MANIFEST=1)",
    )
    group.add_argument(
        "--allow-env",
        action="append",
        default=[],
        metavar="NAME",
        help="a variable the untrusted manifest may read, by ${NAME} or {env: NAME} (repeatable)",
    )
    group.add_argument(
        "--vault-addr", metavar="URL", help="the Vault address (default: VAULT_ADDR)"
    )
    group.add_argument("--dydx-api-url", metavar="URL", help="the dYdX API (default: DYDX_API_URL)")
    group.add_argument(
        "--eth-rpc-url", metavar="URL", help="the Ethereum JSON-RPC (default: ETH_RPC_URL)"
    )
    group.add_argument(
        "--chain-id",
        metavar="ID",
        help="the chain the RPC must serve (default: PROVISION_CHAIN_ID)",
    )


def _stream_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line on stdout, per event (schema: provisioner/schemas/events.schema.json)",
    )
    p.add_argument(
        "--compact",
        action="store_true",
        help=f"group accounts with the same steps in the text plan (the default above {COMPACT_FROM} accounts)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provision",
        description="Declarative onboarding of market makers onto dYdX v3.",
    )
    parser.add_argument("--version", action="version", version=f"provision {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more detail (retries, requests)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check a manifest without touching anything")
    _manifest_arg(p)
    p.add_argument(
        "--format",
        choices=["text", "json", "github"],
        default="text",
        help="github: workflow annotations (::error file=...,line=...::), inline on a pull request",
    )
    p.add_argument(
        "--strict-env",
        action="store_true",
        help="an unset ${VAR} (or a network shorthand's URL variable) is an error, not a warning",
    )

    p = sub.add_parser("plan", help="show the onboarding steps that are missing")
    _manifest_arg(p)
    p.add_argument("--target", action="append", default=[], metavar="NAME")
    p.add_argument("--out", metavar="PLAN", help="save the plan to apply it later")
    p.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    _stream_args(p)
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when nothing is to do, 2 when changes are pending, 1 on error",
    )
    p.add_argument("--parallelism", type=int, default=None, metavar="N")
    p.add_argument("--shard", default=None, metavar="I/N")
    p.add_argument(
        "--prune-api-keys",
        action="store_true",
        help="plan deleting API keys the manifest no longer names",
    )
    p.add_argument(
        "--derive",
        action="store_true",
        help="derive a STARK key Vault lacks with remote signers too (one signature, nothing stored); "
        "local signers always do",
    )
    _vault_token_arg(p)
    _untrusted_args(p)

    p = sub.add_parser("apply", help="perform the missing onboarding steps")
    _manifest_arg(p)
    p.add_argument("plan_file", nargs="?", metavar="PLAN", help="a plan saved by 'plan --out'")
    p.add_argument("--target", action="append", default=[], metavar="NAME")
    p.add_argument("--auto-approve", action="store_true")
    p.add_argument("--max-deposit", default=None, metavar="USDC")
    p.add_argument("--confirm-mainnet", action="store_true")
    p.add_argument("--force-unlock", default=None, metavar="LOCK_ID")
    p.add_argument(
        "--lock-ttl",
        type=int,
        default=None,
        metavar="SECONDS",
        help="how long the locks hold unless renewed, every third of it, while the run works (default 60)",
    )
    p.add_argument(
        "--prune-api-keys",
        action="store_true",
        help="delete API keys at dYdX that the manifest no longer names (never the default key)",
    )
    p.add_argument("--parallelism", type=int, default=None, metavar="N")
    p.add_argument("--shard", default=None, metavar="I/N")
    p.add_argument(
        "--derive",
        action="store_true",
        help="derive a STARK key Vault lacks with remote signers too (one signature, nothing stored); "
        "local signers always do",
    )
    _vault_token_arg(p)
    _stream_args(p)

    p = sub.add_parser("show", help="render a plan saved by 'plan --out' (offline)")
    p.add_argument("plan_file", metavar="PLAN")
    p.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    p.add_argument("--compact", action="store_true", help="group accounts with the same steps")

    p = sub.add_parser(
        "status", help="one line per account: onboarded, registered, deposited, keys"
    )
    _manifest_arg(p)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--target", action="append", default=[], metavar="NAME")
    p.add_argument("--shard", default=None, metavar="I/N")
    p.add_argument(
        "--derive",
        action="store_true",
        help="derive a STARK key Vault lacks with remote signers too (one signature, nothing stored); "
        "local signers always do",
    )
    _vault_token_arg(p)

    p = sub.add_parser(
        "journal",
        help="resolve by hand a journal entry that blocks an address (an unanswered remote signer)",
    )
    p.add_argument("action", choices=["resolve"])
    _manifest_arg(p)
    p.add_argument("--account", required=True, metavar="NAME")
    p.add_argument("--nonce", required=True, type=int, metavar="N")

    p = sub.add_parser("import", help="import keys exported from the dYdX web app's local storage")
    _manifest_arg(p)
    p.add_argument("--account", required=True, metavar="NAME")
    p.add_argument("--local-storage", required=True, metavar="EXPORT.json")
    _vault_token_arg(p)

    p = sub.add_parser(
        "rotate",
        help="rotate one named API key now, whatever its age; or (--due) every rotation that is due",
        description="Rotate --account's --key now, or with --due only what rotate_after and "
        "rotation_overlap make due (new keys, retiring replaced ones), nothing else. "
        "Shows the plan and asks, or --auto-approve.",
    )
    _manifest_arg(p)
    p.add_argument("--account", metavar="NAME")
    p.add_argument("--key", metavar="KEY", help="the manifest's name of the key")
    p.add_argument(
        "--due",
        action="store_true",
        help="every rotation and retirement that is due, no other step",
    )
    p.add_argument("--target", action="append", default=[], metavar="NAME", help="with --due")
    p.add_argument("--shard", default=None, metavar="I/N", help="with --due")
    p.add_argument("--auto-approve", action="store_true")
    p.add_argument("--confirm-mainnet", action="store_true", help="as apply's")
    p.add_argument("--parallelism", type=int, default=None, metavar="N")
    _vault_token_arg(p)
    _stream_args(p)

    p = sub.add_parser(
        "sandbox",
        help="run the local sandbox (OpenBao, anvil, dYdX v3 emulator)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "environment:\n"
            "  SANDBOX_DIR                 state directory (default .sandbox)\n"
            "  SANDBOX_VAULT_PORT, SANDBOX_ANVIL_PORT, SANDBOX_API_PORT\n"
            "                              fixed ports (default: free ones, chosen once)\n"
            "  SANDBOX_BLOCK_TIME          anvil block time in seconds (default 0.25)\n"
            "  SANDBOX_CONFIRMATIONS       blocks before the emulator credits a deposit (default 4)\n"
            "  SANDBOX_RATE_LIMITS         strict (v3's limits, default) or relaxed\n"
            "  BAO_BIN, ANVIL_BIN          binaries to use instead of the installed ones"
        ),
    )
    p.add_argument("action", choices=["up", "env", "status", "down"])
    p.add_argument("--dir", default=None, metavar="DIR", help="state directory (default: .sandbox)")

    sub.add_parser("schema", help="print the manifest JSON Schema")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    try:
        module_name = f"provisioner.cli.commands.{_MODULES.get(args.command, args.command)}"
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        print(f"error: 'provision {args.command}' is not implemented yet", file=sys.stderr)
        return 1
    # One redactor per run: commands register every secret they meet with it (args.redactor),
    # and every error and log line below passes through it.
    redactor = Redactor()
    args.redactor = redactor
    args.lines = Lines()  # one writer: no two threads share a line
    # what a command opened (a Vault login token to revoke, connection pools) is closed when
    # it ends, however it ends; errors on the way out are as redacted as the rest
    args.cleanup = contextlib.ExitStack()
    with redacted_logging(redactor, args.verbose):
        try:
            with args.cleanup:
                return int(module.run(args))
        except ProvisionerError as exc:
            print(f"error: {redactor.redact(printable(str(exc)))}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 1
        except BrokenPipeError:
            # stdout closed early (e.g. piped into `head`): not an error worth a traceback
            sys.stderr.close()
            return 0
        except Exception as exc:  # noqa: BLE001 - a bug: say so, still without a secret
            print(
                redactor.redact(printable(f"error: unexpected {type(exc).__name__}: {exc}")),
                file=sys.stderr,
            )
            if args.verbose:
                print(redactor.redact(traceback.format_exc()), file=sys.stderr, end="")
            else:
                print("(run with -v for the traceback)", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
