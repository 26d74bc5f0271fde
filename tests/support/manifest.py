"""Helpers for the manifest tests: a known environment and a small valid manifest to vary."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from provisioner.manifest.diagnostics import Diagnostic, ManifestError
from provisioner.manifest.loader import parse_manifest
from provisioner.manifest.model import Manifest

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parents[1] / "manifest" / "corpus"
EXAMPLES = REPO / "examples"

ENV = {
    "VAULT_ADDR": "http://127.0.0.1:8200",
    "ETH_RPC_URL": "http://127.0.0.1:8545",
    "DYDX_API_URL": "http://127.0.0.1:8080",
}

ALPHA = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BETA = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"

HEADER = """\
version: 1
network: sandbox
vault:
  address: ${VAULT_ADDR}
"""


def one_account(body: str = "", *, header: str = HEADER, top: str = "") -> str:
    """A manifest with one account mm-alpha; ``body`` lines are added to the account (4-space indent)."""
    account = f"""\
accounts:
  - name: mm-alpha
    address: "{ALPHA}"
    deposit: "10"
    secrets: {{stark_key: dydx/mm-alpha/stark}}
"""
    extra = "".join(f"    {line}\n" for line in body.splitlines() if line.strip())
    return header + top + account + extra


def load(
    text: str, env: Mapping[str, str] | None = None, base_dir: str = "/srv/manifests"
) -> Manifest:
    return parse_manifest(text, "provision.yaml", ENV if env is None else env, base_dir=base_dir)


def errors(text: str, env: Mapping[str, str] | None = None) -> list[Diagnostic]:
    try:
        load(text, env)
    except ManifestError as exc:
        return list(exc.diagnostics)
    raise AssertionError("the manifest was accepted")


def messages(text: str, env: Mapping[str, str] | None = None) -> list[str]:
    return [str(d) for d in errors(text, env)]
