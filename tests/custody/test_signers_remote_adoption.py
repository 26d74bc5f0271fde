"""Issue 17 with a remote signer: an account that exists already, its STARK key not in Vault.

A remote signer's signature may wait for a person, so ``plan`` asks for one only with
``--derive``; without it the steps that depend on the key say so and count the worst case,
and apply, which derives the key in its first step, reports what it actually found: nothing
paid is shown as done, no allowance is sent for a deposit that is already there.
(Anvil's unlocked dev account 5, as in test_signers_on_sandbox.py, which may have onboarded
it already; if not, it is onboarded here the web app's way.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.adoption import onboard_with_dydx3
from support.apply_runs import TestAccount as FundedAccount
from support.apply_runs import chain_client, cli, nonces
from support.custody import write_signer_manifest

from provisioner.money import format_usdc, from_base_units
from provisioner.networks import SEPOLIA
from provisioner.sandbox.control import SandboxInfo
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS

pytestmark = pytest.mark.sandbox

REMOTE = DEV_ACCOUNTS[5]


def _deposited(sandbox: SandboxInfo) -> int:
    """Base units deposited to dev account 5's STARK key, at any position."""
    from dydx3 import Client

    client = Client(
        host=sandbox.api_url, network_id=SEPOLIA.chain_id, eth_private_key=REMOTE.private_key
    )
    stark_public = int(client.onboarding.derive_stark_key()["public_key"], 16)
    with chain_client(sandbox) as chain:
        return sum(v for (s, _), v in chain.deposits(refresh=True).items() if s == stark_public)


def _exists(sandbox: SandboxInfo) -> bool:
    from dydx3 import Client

    client = Client(host=sandbox.api_url, network_id=SEPOLIA.chain_id)
    return bool(client.public.check_if_user_exists(REMOTE.address).data["exists"])


def _usdc(base_units: int) -> str:
    return f"{base_units // 10**6}.{base_units % 10**6:06d}"


def test_a_remote_signer_derives_in_plan_only_with_derive_and_apply_tells_what_it_found(
    sandbox_env: SandboxInfo, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_env
    if not _exists(sandbox):
        onboard_with_dydx3(sandbox, REMOTE.private_key, deposit="1")
    already = _deposited(sandbox)
    assert already > 0
    account = FundedAccount(
        name="remote", address=REMOTE.address, private_key="", deposit=_usdc(already)
    )
    m = write_signer_manifest(
        tmp_path,
        [account],
        {"remote": {"remote": {"url": "${ETH_RPC_URL}", "timeout_seconds": 30}}},
    )

    blind = cli(capsys, "plan", "-f", str(m.path), "--format", "json")
    assert blind.rc == 0, blind.text
    [acc] = json.loads(blind.out)["accounts"]
    steps = {s["kind"]: s for s in acc["steps"]}
    for kind in ("register", "approve", "deposit"):
        assert steps[kind]["summary"].endswith("known once the STARK key is derived"), steps[kind]
    assert "plan --derive asks the remote signer for it" in steps["deposit"]["reason"]
    # the worst case, for the ceilings: nothing deposited yet
    assert int(steps["deposit"]["params"]["amount"]) == already

    derived = cli(capsys, "plan", "-f", str(m.path), "--derive", "--format", "json")
    assert derived.rc == 0, derived.text
    [acc] = json.loads(derived.out)["accounts"]
    assert [s["id"].split("/", 1)[1] for s in acc["steps"]] == ["stark_key", "api_key/default"]

    before = nonces(sandbox, [REMOTE.address])
    res = cli(capsys, "apply", "-f", str(m.path), "--auto-approve")
    assert res.rc == 0, res.text
    assert nonces(sandbox, [REMOTE.address]) == before, "a transaction was sent"
    shown = format_usdc(from_base_units(already))
    there = f"{shown} of {shown}"
    assert f"remote: nothing to do: {there} USDC already deposited" in res.err, res.err
    assert "no allowance needed, none sent" in res.err
    assert "remote: nothing to do: the STARK key is already registered on L1" in res.err
    assert "done: deposit" not in res.err and "done: approve" not in res.err
    again = cli(capsys, "plan", "-f", str(m.path), "--detailed-exitcode")
    assert again.rc == 0, again.text
