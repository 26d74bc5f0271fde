"""Helpers for the reconciler integration tests: isolated funded accounts, manifests, CLI runs, probes.

Every test gets NEW random Ethereum keys (funded on the sandbox chain, stored in the sandbox
Vault at ``secret/sandbox/test-signers/<address>``), its own Vault destinations
(``t-<uuid>/<account>/...``) and its own ``state_path``, so tests never see each other's data
and anvil's ten dev accounts stay free for other suites.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import requests
import yaml
from eth_account import Account
from web3 import Web3

from provisioner.clients.chain import ChainClient
from provisioner.manifest.model import NetworkSpec
from provisioner.networks import SEPOLIA
from provisioner.sandbox import chain_setup
from provisioner.sandbox.control import SandboxInfo

SIGNERS_PREFIX = "sandbox/test-signers"
MOUNT = "secret"
DEFAULT_USDC = 1_000_000 * 10**6  # base units, like the dev accounts
ETH_WEI = 100 * 10**18
REPO = Path(__file__).resolve().parents[2]
PROVISION = str(REPO / ".venv" / "bin" / "provision")


@dataclass
class TestAccount:
    __test__ = False  # a fixture record, not a pytest test class

    name: str
    address: str
    private_key: str  # 0x hex; never printed
    deposit: str = "0"
    api_keys: list[str] = field(default_factory=lambda: ["default"])
    signer: bool = True
    # more fields of an API key's manifest entry, by key name (rotate_after, rotation_overlap)
    key_options: dict[str, dict[str, str]] = field(default_factory=dict)


def vault(sandbox: SandboxInfo) -> hvac.Client:
    return hvac.Client(url=sandbox.vault_addr, token=sandbox.vault_token)


def web3(sandbox: SandboxInfo) -> Web3:
    return chain_setup.connect(sandbox.rpc_url)


def fresh_accounts(
    sandbox: SandboxInfo, count: int, *, usdc: int = DEFAULT_USDC, eth: bool = True
) -> list[tuple[str, str]]:
    """``count`` new random keys, funded with ETH and ``usdc`` base units, keys stored in Vault."""
    w3 = web3(sandbox)
    made = []
    for _ in range(count):
        acct = Account.create()
        made.append(
            (
                acct.address,
                acct.key.hex() if acct.key.hex().startswith("0x") else "0x" + acct.key.hex(),
            )
        )
    for address, _ in made:
        if eth:
            w3.provider.make_request("anvil_setBalance", [address, hex(ETH_WEI)])
    if usdc:
        set_usdc(sandbox, [a for a, _ in made], usdc)
    kv = vault(sandbox).secrets.kv.v2
    for address, key in made:
        kv.create_or_update_secret(
            path=f"{SIGNERS_PREFIX}/{address}",
            secret={"private_key": key, "address": address},
            mount_point=MOUNT,
        )
    return made


def fresh_account(sandbox: SandboxInfo, **kwargs: Any) -> tuple[str, str]:
    return fresh_accounts(sandbox, 1, **kwargs)[0]


def set_usdc(sandbox: SandboxInfo, addresses: Sequence[str], amount: int) -> None:
    """USDC stand-in ``setBalance`` for each address, sent by the sandbox operator; waits for receipts."""
    w3 = web3(sandbox)
    usdc = chain_setup.usdc_contract(w3)
    chain_setup._send_all(w3, [usdc.functions.setBalance(a, amount) for a in addresses])


def make_accounts(sandbox: SandboxInfo, specs: Sequence[dict[str, Any]]) -> list[TestAccount]:
    """specs: dicts with name, deposit, api_keys, signer (default True), usdc (optional)."""
    funded = fresh_accounts(sandbox, len(specs))
    return [
        TestAccount(
            name=s["name"],
            address=address,
            private_key=key,
            deposit=s.get("deposit", "0"),
            api_keys=list(s.get("api_keys", ["default"])),
            signer=s.get("signer", True),
            key_options=dict(s.get("key_options", {})),
        )
        for s, (address, key) in zip(specs, funded, strict=True)
    ]


@dataclass
class Manifest:
    path: Path
    prefix: str  # t-<uuid>
    state_path: str
    accounts: list[TestAccount]

    def stark_path(self, name: str) -> str:
        return f"{self.prefix}/{name}/stark"

    def api_path(self, name: str, key: str) -> str:
        return f"{self.prefix}/{name}/api/{key}"

    def destinations(self) -> list[str]:
        out = []
        for a in self.accounts:
            out.append(self.stark_path(a.name))
            out += [self.api_path(a.name, k) for k in a.api_keys]
        return out

    def account(self, name: str) -> TestAccount:
        return next(a for a in self.accounts if a.name == name)

    def rewrite(self, **kwargs: Any) -> None:
        """Write the manifest again (same prefix and state path) after editing ``accounts``."""
        write_manifest(
            self.path.parent,
            self.accounts,
            prefix=self.prefix,
            state_path=self.state_path,
            filename=self.path.name,
            **kwargs,
        )


def write_manifest(
    tmp_path: Path,
    accounts: Sequence[TestAccount],
    *,
    prefix: str | None = None,
    state_path: str | None = None,
    max_deposit: str | None = None,
    network: Any = "sandbox",
    filename: str = "provision.yaml",
) -> Manifest:
    prefix = prefix or f"t-{uuid.uuid4().hex[:12]}"
    state_path = state_path or f"{prefix}/state"
    doc: dict[str, Any] = {
        "version": 1,
        "network": network,
        "vault": {
            "address": "${VAULT_ADDR}",
            "auth": {"method": "token"},
            "mount": MOUNT,
            "state_path": state_path,
        },
    }
    if max_deposit is not None:
        doc["max_deposit"] = max_deposit
    doc["accounts"] = []
    for a in accounts:
        entry: dict[str, Any] = {"name": a.name, "address": a.address}
        if a.signer:
            entry["signer"] = {
                "private_key": {"vault": f"{SIGNERS_PREFIX}/{a.address}#private_key"}
            }
        entry["deposit"] = a.deposit
        entry["secrets"] = {"stark_key": f"{prefix}/{a.name}/stark"}
        entry["api_keys"] = [
            {"name": k, "secret": f"{prefix}/{a.name}/api/{k}", **a.key_options.get(k, {})}
            for k in a.api_keys
        ]
        doc["accounts"].append(entry)
    path = Path(tmp_path) / filename
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return Manifest(path=path, prefix=prefix, state_path=state_path, accounts=list(accounts))


# -- running the CLI --------------------------------------------------------------------------


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def cli(capsys: Any, *args: str) -> Result:
    """Run ``provision`` in-process (the environment must hold the sandbox variables)."""
    from provisioner.cli.main import main

    capsys.readouterr()
    rc = main(list(args))
    captured = capsys.readouterr()
    return Result(rc, captured.out, captured.err)


def cli_captured(*args: str) -> Result:
    """Run ``provision`` in-process with its output captured by hand: for fixtures wider than
    one test, where capsys is not available."""
    import contextlib
    import io

    from provisioner.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return Result(rc, out.getvalue(), err.getvalue())


def cli_subprocess(sandbox: SandboxInfo, *args: str, timeout: float = 120) -> Result:
    """Run ``provision`` as a real process with no terminal on stdin."""
    import os

    env = dict(os.environ)
    env.update(sandbox.env())
    env["NO_COLOR"] = "1"
    proc = subprocess.run(
        [PROVISION, *args]
        if Path(PROVISION).exists()
        else [sys.executable, "-m", "provisioner.cli.main", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


# -- probes -----------------------------------------------------------------------------------


def emulator_stats(sandbox: SandboxInfo) -> dict[str, Any]:
    return requests.get(f"{sandbox.api_url}/admin/stats", timeout=10).json()


def nonces(sandbox: SandboxInfo, addresses: Sequence[str]) -> dict[str, int]:
    w3 = web3(sandbox)
    return {
        a: w3.eth.get_transaction_count(Web3.toChecksumAddress(a), "pending") for a in addresses
    }


def read_secret(sandbox: SandboxInfo, path: str) -> tuple[dict[str, str], dict[str, Any]] | None:
    """(data, metadata) of the current version, or None when nothing is there."""
    kv = vault(sandbox).secrets.kv.v2
    try:
        resp = kv.read_secret_version(path=path, mount_point=MOUNT, raise_on_deleted_version=True)
    except hvac.exceptions.InvalidPath:
        return None
    return resp["data"]["data"], resp["data"]["metadata"]


def read_metadata(sandbox: SandboxInfo, path: str) -> dict[str, Any] | None:
    kv = vault(sandbox).secrets.kv.v2
    try:
        return kv.read_secret_metadata(path=path, mount_point=MOUNT)["data"]
    except hvac.exceptions.InvalidPath:
        return None


def versions(sandbox: SandboxInfo, paths: Sequence[str]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for p in paths:
        meta = read_metadata(sandbox, p)
        out[p] = None if meta is None else int(meta["current_version"])
    return out


def chain_client(sandbox: SandboxInfo) -> ChainClient:
    network = NetworkSpec(
        name="sandbox",
        chain_id=SEPOLIA.chain_id,
        api_url=sandbox.api_url,
        rpc_url=sandbox.rpc_url,
        exchange_contract=SEPOLIA.exchange_contract,
        usdc_contract=SEPOLIA.usdc_contract,
        collateral_asset_id=SEPOLIA.collateral_asset_id,
        confirmations=2,
    )
    return ChainClient(sandbox.rpc_url, network)


def deposited(sandbox: SandboxInfo, stark_public: int, position_id: int) -> int:
    with chain_client(sandbox) as chain:
        return chain.deposits(refresh=True).get((stark_public, position_id), 0)


def stark_owner(sandbox: SandboxInfo, address: str, stark_public: int) -> str | None:
    with chain_client(sandbox) as chain:
        return chain.read_accounts([(address, stark_public)])[
            Web3.toChecksumAddress(address)
        ].stark_key_owner


def dydx3_client(
    sandbox: SandboxInfo, api_secret: dict[str, str], stark_private: str | None = None
) -> Any:
    """The official dydx3 client, built only from what Vault holds."""
    from dydx3 import Client

    return Client(
        host=sandbox.api_url,
        network_id=SEPOLIA.chain_id,
        api_key_credentials={
            "key": api_secret["key"],
            "secret": api_secret["secret"],
            "passphrase": api_secret["passphrase"],
        },
        stark_private_key=stark_private,
    )


def secret_values(sandbox: SandboxInfo, manifest: Manifest) -> list[str]:
    """Every secret value written for these accounts (private keys, API secrets, passphrases)."""
    values = []
    for a in manifest.accounts:
        values.append(a.private_key)
        rec = read_secret(sandbox, manifest.stark_path(a.name))
        if rec:
            values.append(rec[0]["private_key"])
        for k in a.api_keys:
            rec = read_secret(sandbox, manifest.api_path(a.name, k))
            if rec:
                values += [rec[0]["secret"], rec[0]["passphrase"]]
    return [v for v in values if v]


def assert_no_secret(text: str, secrets: Sequence[str], where: str) -> None:
    """Checks raw and common re-encodings (no 0x, upper case, int, JSON-escaped) without printing values."""
    lowered = text.lower()
    for i, value in enumerate(secrets):
        forms = {value, value.lower(), json.dumps(value)[1:-1]}
        if value.startswith("0x"):
            forms.add(value[2:].lower())
            with contextlib.suppress(ValueError):
                forms.add(str(int(value, 16)))
        for form in forms:
            if len(form) >= 8 and form.lower() in lowered:
                raise AssertionError(
                    f"secret value #{i} appears in {where}"
                )  # never the value itself


def secret_paths(sandbox: SandboxInfo, prefix: str) -> list[str]:
    """Every secret path under ``prefix``, depth first (empty when nothing is there)."""
    kv = vault(sandbox).secrets.kv.v2
    out: list[str] = []

    def walk(path: str) -> None:
        try:
            keys = kv.list_secrets(path=path, mount_point=MOUNT)["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            return
        for key in keys:
            if key.endswith("/"):
                walk(path + key)
            else:
                out.append(path + key)

    walk(prefix.rstrip("/") + "/")
    return out


def tree_versions(sandbox: SandboxInfo, prefix: str) -> dict[str, int]:
    """Current version of every secret under ``prefix`` (the run's state: locks, journal)."""
    out: dict[str, int] = {}
    for path in secret_paths(sandbox, prefix):
        meta = read_metadata(sandbox, path)
        out[path] = int(meta["current_version"]) if meta else 0
    return out
