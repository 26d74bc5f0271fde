"""Canaries (issue #7): recognisable secret values planted in every place a secret can come
from (environment, key file, Vault, keystore and its password, the Vault token, RPC URL
credentials), plus the secrets apply derives (STARK keys, API secrets and passphrases). None
may appear in stdout, stderr, log records, plan files (every format) or exception text,
across validate, plan, apply, status and their failures, in-process and as real processes.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from eth_account import Account
from support.apply_runs import (
    MOUNT,
    Result,
    assert_no_secret,
    cli_captured,
    read_secret,
    set_usdc,
    vault,
    web3,
)
from support.safety import emulator_faults, provision

from provisioner.connections import connect
from provisioner.errors import ProvisionerError
from provisioner.manifest.loader import load_manifest
from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox

ETH = hex(100 * 10**18)


def _hex_canary(word: str) -> str:
    """A private key that reads as a canary: ``word`` (hex letters) then random hex."""
    return "0x" + word + secrets.token_hex(32)[len(word) :]


@dataclass
class Planted:
    """Every canary of one test, and where the test put it."""

    prefix: str
    keys: dict[str, str]  # account -> private key (each from a different source)
    keystore_password: str
    vault_token: str
    rpc_password: str
    env: dict[str, str]
    manifest: Path
    derived: list[str] = field(default_factory=list)  # filled after apply

    def values(self) -> list[str]:
        return [
            *self.keys.values(),
            self.keystore_password,
            self.vault_token,
            self.rpc_password,
            *self.derived,
        ]


def _manifest_doc(p: Planted, key_file: Path, keystore: Path) -> dict[str, Any]:
    signers = {
        "can-env": {"private_key": {"env": "CANARY_SIGNER_KEY"}},
        "can-file": {"private_key": {"file": key_file.name}},  # beside the manifest
        "can-vault": {"private_key": {"vault": f"{p.prefix}/signer#private_key"}},
        "can-keystore": {
            "keystore": {"path": keystore.name, "password": {"env": "CANARY_KS_PASSWORD"}}
        },
    }
    return {
        "version": 1,
        "network": "sandbox",
        "vault": {
            "address": "${VAULT_ADDR}",
            "auth": {"method": "token", "token": {"env": "CANARY_VAULT_TOKEN"}},
            "mount": MOUNT,
            "state_path": f"{p.prefix}/state",
        },
        "accounts": [
            {
                "name": name,
                "address": Account.from_key(p.keys[name]).address,
                "signer": signer,
                "deposit": "1.25",
                "secrets": {"stark_key": f"{p.prefix}/{name}/stark"},
                "api_keys": [
                    {"name": k, "secret": f"{p.prefix}/{name}/api/{k}"}
                    for k in ("default", "hedger")
                ],
            }
            for name, signer in signers.items()
        ],
    }


@pytest.fixture(scope="module")
def planted(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Planted:
    tmp = tmp_path_factory.mktemp("canaries")
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    keys = {
        "can-env": _hex_canary("ca11ab1e"),
        "can-file": _hex_canary("c0ffee"),
        "can-vault": _hex_canary("decade"),
        "can-keystore": _hex_canary("facade"),
    }
    token = f"canary-vault-token-{secrets.token_hex(6)}"
    rpc_password = f"canary-rpc-pass-{secrets.token_hex(4)}"
    p = Planted(
        prefix=prefix,
        keys=keys,
        keystore_password=f"canary-keystore-password-{secrets.token_hex(4)}",
        vault_token=token,
        rpc_password=rpc_password,
        env={},
        manifest=tmp / "provision.yaml",
    )
    root = vault(sandbox)
    root.auth.token.create(id=token, policies=["root"], ttl="2h")
    root.secrets.kv.v2.create_or_update_secret(
        path=f"{prefix}/signer", secret={"private_key": keys["can-vault"]}, mount_point=MOUNT
    )
    key_file = tmp / "signer.key"
    key_file.write_text(keys["can-file"] + "\n")
    keystore = tmp / "keystore.json"
    keystore.write_text(
        json.dumps(
            Account.encrypt(
                keys["can-keystore"], p.keystore_password, kdf="scrypt", iterations=2**10
            )
        )
    )
    p.manifest.write_text(yaml.safe_dump(_manifest_doc(p, key_file, keystore), sort_keys=False))
    w3 = web3(sandbox)
    addresses = [Account.from_key(k).address for k in keys.values()]
    for address in addresses:
        w3.provider.make_request("anvil_setBalance", [address, ETH])
    set_usdc(sandbox, addresses, 10**9)
    rpc = urlsplit(sandbox.rpc_url)
    p.env = {
        **sandbox.env(),
        "VAULT_TOKEN": "",  # only the manifest's reference may supply the token
        "CANARY_VAULT_TOKEN": token,
        "CANARY_SIGNER_KEY": keys["can-env"],
        "CANARY_KS_PASSWORD": p.keystore_password,
        "ETH_RPC_URL": f"http://canary-rpc-user:{rpc_password}@{rpc.hostname}:{rpc.port}",
        "NO_COLOR": "1",
    }
    return p


@dataclass
class Seen:
    """Everything the runs printed, logged, wrote or raised, by where it came from."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, where: str, result: Result) -> Result:
        self.texts[f"{where} stdout"] = result.out
        self.texts[f"{where} stderr"] = result.err
        return result


@pytest.fixture(scope="module")
def seen(
    planted: Planted, sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seen]:
    out = Seen()
    tmp = tmp_path_factory.mktemp("canary-runs")
    f = str(planted.manifest)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in planted.env.items():
            mp.setenv(name, value)
        records = _Records()
        root = logging.getLogger()
        level = root.level
        root.addHandler(records)
        root.setLevel(logging.DEBUG)
        try:
            out.add("validate", cli_captured("validate", "-f", f))
            out.add("validate json", cli_captured("validate", "-f", f, "--format", "json"))
            for fmt in ("text", "json", "markdown"):
                saved = tmp / f"plan-{fmt}.json"
                out.add(
                    f"plan {fmt}",
                    cli_captured("-vv", "plan", "-f", f, "--format", fmt, "--out", str(saved)),
                )
                out.texts[f"plan file ({fmt} run)"] = saved.read_text()
            _failures(out, planted, tmp, mp)  # while every account has work to do
            # a failing apply first: every secret is in play, POST /v3/api-keys always fails
            emulator_faults(
                sandbox,
                [{"method": "POST", "path": "/v3/api-keys", "error_rate": 1, "status": 500}],
            )
            try:
                failed = out.add(
                    "failing apply", cli_captured("-v", "apply", "-f", f, "--auto-approve")
                )
            finally:
                emulator_faults(sandbox, None)
            assert failed.rc == 1 and "FAILED at" in failed.err, failed.err
            out.add("apply", cli_captured("-v", "apply", "-f", f, "--auto-approve"))
            out.add("stale plan", cli_captured("apply", "-f", f, str(tmp / "plan-json.json")))
            out.add("status", cli_captured("-v", "status", "-f", f))
            out.add("status json", cli_captured("status", "-f", f, "--format", "json"))
            out.add("converged plan", cli_captured("plan", "-f", f, "--detailed-exitcode"))
        finally:
            root.removeHandler(records)
            root.setLevel(level)
        out.texts["log records"] = "\n".join(records.lines)
    # the same as real processes, secrets from the same places
    env = {k: v for k, v in planted.env.items()}
    for args in (("-v", "plan", "-f", f), ("-v", "apply", "-f", f, "--auto-approve")):
        run = provision(sandbox, *args, env=env)
        out.texts[f"process {args[1]} stdout"] = run.out
        out.texts[f"process {args[1]} stderr"] = run.err
    planted.derived = _derived(sandbox, planted)
    yield out


def _failures(out: Seen, p: Planted, tmp: Path, mp: pytest.MonkeyPatch) -> None:
    """The failure paths, each with every canary still in the environment."""
    f = str(p.manifest)
    doc = yaml.safe_load(p.manifest.read_text())
    # a wrong keystore password and a Vault reference to a field that is not there
    bad = json.loads(json.dumps(doc))
    bad["accounts"][3]["signer"]["keystore"]["password"] = {"env": "CANARY_WRONG_PASSWORD"}
    bad["accounts"][2]["signer"]["private_key"]["vault"] = f"{p.prefix}/signer#nope"
    bad_path = p.manifest.with_name("bad-signers.yaml")  # beside the files it refers to
    bad_path.write_text(yaml.safe_dump(bad, sort_keys=False))
    mp.setenv("CANARY_WRONG_PASSWORD", p.keystore_password + "-wrong")
    out.add("bad signers plan", cli_captured("-v", "plan", "-f", str(bad_path)))
    # the signer of another address
    swapped = json.loads(json.dumps(doc))
    swapped["accounts"][0]["signer"] = doc["accounts"][1]["signer"]
    swapped_path = p.manifest.with_name("swapped.yaml")
    swapped_path.write_text(yaml.safe_dump(swapped, sort_keys=False))
    out.add("swapped signer plan", cli_captured("-v", "plan", "-f", str(swapped_path)))
    # a bad address: the manifest is refused
    broken = json.loads(json.dumps(doc))
    broken["accounts"][0]["address"] = broken["accounts"][0]["address"].lower()[:-1] + "G"
    broken_path = p.manifest.with_name("broken.yaml")
    broken_path.write_text(yaml.safe_dump(broken, sort_keys=False))
    out.add("bad address validate", cli_captured("validate", "-f", str(broken_path)))
    out.add("bad address plan", cli_captured("plan", "-f", str(broken_path)))
    # Vault refusing the token, then Vault gone
    mp.setenv("CANARY_VAULT_TOKEN", p.vault_token + "-revoked")
    out.add("wrong token plan", cli_captured("-v", "plan", "-f", f))
    mp.setenv("CANARY_VAULT_TOKEN", p.vault_token)
    mp.setenv("VAULT_ADDR", "http://127.0.0.1:9")
    out.add("dead vault apply", cli_captured("-v", "apply", "-f", f, "--auto-approve"))
    out.add("dead vault status", cli_captured("status", "-f", f))
    try:
        connect(load_manifest(f))
    except ProvisionerError as exc:
        out.texts["exception: connect to a dead Vault"] = f"{exc!s} {exc!r}"
    else:
        raise AssertionError("connect to a dead Vault did not fail")
    mp.setenv("VAULT_ADDR", p.env["VAULT_ADDR"])


def _derived(sandbox: SandboxInfo, p: Planted) -> list[str]:
    values = []
    for name in p.keys:
        stark = read_secret(sandbox, f"{p.prefix}/{name}/stark")
        assert stark is not None, f"{name}: no STARK key after apply"
        values.append(stark[0]["private_key"])
        for key in ("default", "hedger"):
            api = read_secret(sandbox, f"{p.prefix}/{name}/api/{key}")
            assert api is not None, f"{name}: no API key {key} after apply"
            values += [api[0]["secret"], api[0]["passphrase"]]
    return values


class _Records(logging.Handler):
    """Every log record of any library, raw (before our redacting formatter): libraries must
    not log secrets in the first place, or at least never one we know."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


def test_the_runs_did_what_they_should(seen: Seen) -> None:
    t = seen.texts
    assert "valid, 4 accounts" in t["validate stdout"]
    assert "Apply complete" in t["apply stdout"] and "0 account(s) failed" in t["apply stdout"]
    assert "is stale" in t["stale plan stderr"]
    assert "No changes" in t["converged plan stdout"]
    assert "wrong password" in t["bad signers plan stdout"], t["bad signers plan stderr"]
    assert "no field 'nope'" in t["bad signers plan stdout"]
    assert "signs for" in t["swapped signer plan stdout"]
    assert "unreachable" in t["dead vault apply stderr"]
    assert "Nothing to apply" in t["process apply stdout"]
    # -vv logs: the transport's own debug lines (urllib3 carries only proxied requests now)
    assert "provisioner.clients.direct" in t["log records"] and "DEBUG" in t["plan text stderr"]


def test_no_canary_anywhere(seen: Seen, planted: Planted) -> None:
    values = planted.values()
    assert len(planted.derived) == 4 * 5
    assert "canary-rpc-user" not in "".join(seen.texts.values())
    for where, text in seen.texts.items():
        assert_no_secret(text, values, where)
        assert "Traceback" not in text, where


def test_vault_token_from_the_manifest_reference_was_the_one_used(
    seen: Seen, planted: Planted, sandbox: SandboxInfo
) -> None:
    """The run logged in with the planted token (so its redaction was really exercised)."""
    info = vault(sandbox).auth.token.lookup(planted.vault_token)["data"]
    assert info["id"] == planted.vault_token
    assert info["num_uses"] == 0 and "root" in info["policies"]
