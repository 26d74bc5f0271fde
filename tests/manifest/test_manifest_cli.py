"""`provision validate` and `provision schema` as a user runs them, and secrets never echoed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.manifest import CORPUS, ENV, REPO, one_account

from provisioner.cli.main import main
from provisioner.manifest.schema import schema_text


def run_cli(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ENV}
    environment.update(ENV if env is None else env)
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_valid_manifest_prints_one_summary_line() -> None:
    result = run_cli("validate", "-f", "examples/sandbox.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "examples/sandbox.yaml: valid, 3 accounts on sandbox (chain 11155111), "
        "26008.7 USDC to have deposited in total, 6 API keys"
    ]


def test_valid_manifest_as_json() -> None:
    result = run_cli("validate", "-f", "examples/sandbox.yaml", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {
        "valid": True,
        "file": "examples/sandbox.yaml",
        "summary": {
            "accounts": 3,
            "network": "sandbox",
            "chain_id": 11155111,
            "total_deposit": "26008.7",
            "api_keys": 6,
            "import_only": 0,
        },
    }


@pytest.mark.parametrize(
    ("case", "location"),
    [
        ("bad-yaml-indent.yaml", "8:4"),
        ("over-precise-float-deposit.yaml", "9:14"),
        ("inline-private-key.yaml", "10:20"),
        ("many-errors.yaml", "20:14"),
    ],
)
def test_invalid_manifest_exits_1_with_locations(case: str, location: str) -> None:
    path = CORPUS / case
    result = run_cli("validate", "-f", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert f"{path}:{location}: " in result.stderr


def test_default_file_is_provision_yaml_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "provision.yaml").write_text(one_account(), encoding="utf-8")
    result = run_cli("validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("provision.yaml: valid, 1 account on sandbox")


def test_missing_file(tmp_path: Path) -> None:
    result = run_cli("validate", "-f", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        == "error: manifest nope.yaml not found; expected a path given with -f/--file"
    )
    result = run_cli("validate", "-f", "nope.yaml", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1
    (error,) = json.loads(result.stdout)["errors"]
    assert error["line"] is None and "not found" in error["message"]


def test_schema_command_prints_the_schema_file() -> None:
    result = run_cli("schema")
    assert result.returncode == 0
    assert result.stdout == schema_text()
    assert json.loads(result.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_command_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"].startswith("dydx-provisioner manifest")


CANARY = "0xCANARY5ecret"
CANARY_HEX = "c0ffee" * 10 + "cafe"  # 64 hex digits: shaped like a private key


@pytest.mark.parametrize(
    "body",
    [
        f'signer: {{private_key: "{CANARY}"}}',
        f"signer:\n  private_key: {CANARY}",
        f"signer: {{private_key: [{CANARY}]}}",
        f"signer: {{private_key: {{value: {CANARY}}}}}",
        f"signer: {{private_key: {{vault: {CANARY}}}}}",
        f"signer: {{private_key: {{env: {CANARY}}}}}",
        f"signer: {{keystore: {{path: k.json, password: {CANARY}}}}}",
        f"signer: {{keystore: {{path: k.json, password: {{env: {CANARY}, file: x}}}}}}",
        f"signer: {{private_key: {{vault: {CANARY_HEX}}}}}",
        f"signer: {{private_key: {CANARY_HEX}}}",
        f"allowance: {CANARY_HEX}",
        f"{CANARY_HEX}: 1",
        'signer: {private_key: "${CANARY_VAR}"}',
        'signer:\n  private_key: {vault: "${CANARY_VAR}"}',
        "signer:\n  private_key:\n    vault: ${CANARY_VAR}/../up#field",
    ],
)
@pytest.mark.parametrize("output", ["text", "json"])
def test_canary_secret_never_appears_in_output(
    body: str,
    output: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CANARY_VAR", CANARY)
    path = tmp_path / "provision.yaml"
    path.write_text(one_account(body), encoding="utf-8")
    assert main(["validate", "-f", str(path), "--format", output]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert f"{path}:" in out + err
    assert "syntax error" not in out + err  # the case must reach the checks it is meant for
    for secret in ("CANARY", "5ecret", CANARY_HEX, CANARY_HEX[:16]):
        assert secret not in out + err


def test_canary_in_vault_auth_never_appears(tmp_path: Path) -> None:
    header = (
        "version: 1\nnetwork: sandbox\nvault:\n  address: ${VAULT_ADDR}\n"
        f"  auth: {{method: approle, role_id: r, secret_id: {CANARY}}}\n"
    )
    path = tmp_path / "provision.yaml"
    path.write_text(one_account(header=header), encoding="utf-8")
    result = run_cli("validate", "-f", str(path))
    assert result.returncode == 1
    assert "vault.auth.secret_id is written inline" in result.stderr
    assert "CANARY" not in result.stdout + result.stderr


def test_urls_are_not_echoed_they_may_carry_credentials(tmp_path: Path) -> None:
    header = (
        "version: 1\nnetwork:\n  name: n\n  chain_id: 1\n  api_url: https://api.dydx.exchange\n"
        "  rpc_url: htps://eth-mainnet.example/v2/RPCKEY123\nvault:\n  address: ${VAULT_ADDR}\n"
    )
    path = tmp_path / "provision.yaml"
    path.write_text(one_account(header=header), encoding="utf-8")
    result = run_cli("validate", "-f", str(path))
    assert result.returncode == 1
    assert (
        f"{path}:6:12: network.rpc_url is not valid; expected an http(s):// or ws(s):// URL"
        in result.stderr
    )
    assert "RPCKEY123" not in result.stderr
