"""Issue #6 "done when": three fresh accounts onboarded by one apply, usable by dydx3 from Vault alone,
and a second apply that is quiet (no write anywhere)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from support.apply_runs import (
    Manifest,
    Result,
    assert_no_secret,
    cli,
    cli_captured,
    deposited,
    dydx3_client,
    emulator_stats,
    make_accounts,
    nonces,
    read_secret,
    secret_values,
    stark_owner,
    tree_versions,
    versions,
    write_manifest,
)

from provisioner.content_metadata import matches_record, without_content_keys
from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox

ACCOUNTS = [
    {"name": "alpha", "deposit": "8.2", "api_keys": ["default", "hedger"]},
    {"name": "beta", "deposit": "0.29", "api_keys": ["default"]},
    {"name": "gamma", "deposit": "25000.50", "api_keys": ["default", "quoter", "hedger"]},
]
BASE_UNITS = {"alpha": 8_200_000, "beta": 290_000, "gamma": 25_000_500_000}


@dataclass
class Applied:
    manifest: Manifest
    first_plan: Result  # plan before anything was done
    plan_json: Result
    plan_markdown: Result
    apply: Result
    apply_requests: dict[str, int]  # the emulator's requests during the apply, by route


@pytest.fixture(scope="module")
def applied(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in sandbox.env().items():
            mp.setenv(name, value)
        mp.setenv("NO_COLOR", "1")
        accounts = make_accounts(sandbox, ACCOUNTS)
        manifest = write_manifest(tmp_path_factory.mktemp("onboarding"), accounts)
        f = str(manifest.path)
        first = cli_captured("plan", "-f", f, "--detailed-exitcode")
        as_json = cli_captured("plan", "-f", f, "--format", "json")
        as_md = cli_captured("plan", "-f", f, "--format", "markdown")
        before = emulator_stats(sandbox)["requests"]
        result = cli_captured("apply", "-f", f, "--auto-approve")
        after = emulator_stats(sandbox)["requests"]
        made = {route: n - before.get(route, 0) for route, n in after.items()}
        yield Applied(manifest, first, as_json, as_md, result, made)


def test_apply_onboards_every_account(applied: Applied) -> None:
    assert applied.first_plan.rc == 2, applied.first_plan.text
    assert applied.apply.rc == 0, applied.apply.text
    assert "0 account(s) failed" in applied.apply.out


def test_apply_asks_once_per_account_whether_dydx_knows_it(applied: Applied) -> None:
    """The public users/exists budget is shared by every account of a run: apply asks once per
    fresh account (its first look), takes that answer over under the lock while Vault shows the
    account unchanged, and lets POST /v3/onboarding itself refuse a user that appeared since."""
    made = applied.apply_requests
    fresh = len(applied.manifest.accounts)
    assert made.get("GET /v3/users/exists") == fresh, made
    assert made.get("POST /v3/onboarding") == fresh, made


def test_dydx3_client_built_from_vault_alone_trades(applied: Applied, sandbox: SandboxInfo) -> None:
    m = applied.manifest
    for account in m.accounts:
        stark = read_secret(sandbox, m.stark_path(account.name))
        assert stark is not None, f"no STARK secret for {account.name}"
        stark_data, stark_meta = stark
        for field in (
            "private_key",
            "public_key",
            "public_key_y_coordinate",
            "ethereum_address",
            "position_id",
            "account_id",
            "network",
        ):
            assert stark_data.get(field), f"{account.name}: STARK secret lacks {field}"
        assert stark_data["ethereum_address"].lower() == account.address.lower()
        assert without_content_keys(stark_meta["custom_metadata"]) == {
            "managed-by": "dydx-provisioner",
            "account": account.name,
        }
        # the record a metadata-only plan reads describes exactly this version and data
        assert matches_record(stark_meta["custom_metadata"], stark_meta["version"], stark_data), (
            f"{account.name}: STARK secret record"
        )
        stark_public = int(stark_data["public_key"], 16)
        key_ids = set()
        for key_name in account.api_keys:
            rec = read_secret(sandbox, m.api_path(account.name, key_name))
            assert rec is not None, f"{account.name}: no API secret {key_name}"
            api, meta = rec
            assert set(api) >= {"key", "secret", "passphrase", "ethereum_address", "network"}
            assert api["ethereum_address"].lower() == account.address.lower()
            assert without_content_keys(meta["custom_metadata"]) == {
                "managed-by": "dydx-provisioner",
                "account": account.name,
            }
            assert matches_record(meta["custom_metadata"], meta["version"], api)
            key_ids.add(api["key"])
            bot = dydx3_client(sandbox, api, stark_private_key_of(stark_data))
            accounts = bot.private.get_accounts().data["accounts"]
            assert len(accounts) == 1
            assert int(accounts[0]["starkKey"], 16) == stark_public
            assert int(accounts[0]["positionId"]) == int(stark_data["position_id"])
            assert accounts[0]["id"] == stark_data["account_id"]
            user = bot.private.get_user().data["user"]
            assert user["ethereumAddress"].lower() == account.address.lower()
            listed = {k["key"] for k in bot.private.get_api_keys().data["apiKeys"]}
            assert api["key"] in listed
        assert len(key_ids) == len(account.api_keys), "two names share one API key"
        owner = stark_owner(sandbox, account.address, stark_public)
        assert owner is not None and owner.lower() == account.address.lower()
        total = deposited(sandbox, stark_public, int(stark_data["position_id"]))
        assert total == BASE_UNITS[account.name], account.name


def stark_private_key_of(data: dict[str, str]) -> str:
    return data["private_key"]


def test_second_apply_is_quiet(applied: Applied, sandbox: SandboxInfo, capsys) -> None:  # type: ignore[no-untyped-def]
    m = applied.manifest
    addresses = [a.address for a in m.accounts]
    before_stats = emulator_stats(sandbox)["writes"]
    before_nonces = nonces(sandbox, addresses)
    before_versions = versions(sandbox, m.destinations())
    before_state = tree_versions(sandbox, m.state_path)
    assert all(v for v in before_versions.values()), before_versions

    again = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    assert again.rc == 0, again.text
    assert "Nothing to apply." in again.out
    assert "No changes." in again.out

    assert emulator_stats(sandbox)["writes"] == before_stats
    assert nonces(sandbox, addresses) == before_nonces
    assert versions(sandbox, m.destinations()) == before_versions
    assert tree_versions(sandbox, m.state_path) == before_state, "a converged apply wrote state"

    plan = cli(capsys, "plan", "-f", str(m.path), "--detailed-exitcode")
    assert plan.rc == 0, plan.text
    assert "No changes." in plan.out
    status = cli(capsys, "status", "-f", str(m.path), "--format", "json")
    assert status.rc == 0, status.text
    rows = {r["account"]: r for r in json.loads(status.out)["accounts"]}
    for a in m.accounts:
        row = rows[a.name]
        assert row["onboarded"] is True and row["registered"] is True
        assert row["stark_key_in_vault"] is True
        assert row["deposited"] == row["target"]
        assert all(row["api_keys"].values()), row["api_keys"]
    table = cli(capsys, "status", "-f", str(m.path))
    assert table.rc == 0, table.text
    for a in m.accounts:
        assert a.name in table.out
    assert "(missing)" not in table.out
    assert emulator_stats(sandbox)["writes"] == before_stats


def test_first_plan_outputs(applied: Applied) -> None:
    """The plan before apply: every step listed, JSON valid with a summary, markdown has a table."""
    plan = json.loads(applied.plan_json.out)
    assert applied.plan_json.rc == 0
    assert set(plan["summary"]) == {"add", "change", "destroy", "blocked", "pending"}
    assert plan["summary"]["add"] > 0 and plan["summary"]["blocked"] == 0
    assert [a["name"] for a in plan["accounts"]] == ["alpha", "beta", "gamma"]
    kinds = {s["kind"] for s in plan["accounts"][0]["steps"]}
    assert {"stark_key", "onboard", "api_key", "register", "approve", "deposit"} <= kinds
    deposits = {
        a["name"]: int(s["params"]["amount"])
        for a in plan["accounts"]
        for s in a["steps"]
        if s["kind"] == "deposit"
    }
    assert deposits == BASE_UNITS
    _validate_plan_schema(plan)
    md = applied.plan_markdown.out
    assert "| account | step | why | status |" in md
    assert "| --- |" in md
    assert "`alpha`" in md and "`gamma`" in md


def _validate_plan_schema(plan: dict) -> None:  # type: ignore[type-arg]
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("provisioner").joinpath("schemas", "plan.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(plan)


def test_no_secret_in_any_output(applied: Applied, sandbox: SandboxInfo) -> None:
    secrets = secret_values(sandbox, applied.manifest)
    # 3 signer keys + 3 STARK keys + 6 API keys x (secret, passphrase)
    assert len(secrets) == 3 + 3 + 6 * 2
    for name in ("first_plan", "plan_json", "plan_markdown", "apply"):
        result: Result = getattr(applied, name)
        assert_no_secret(result.out, secrets, f"{name} stdout")
        assert_no_secret(result.err, secrets, f"{name} stderr")
