"""Issue #8: `provision import` of keys from the web app's local storage, on the sandbox.

A wallet is onboarded by the official client the way the web app does it; its STARK key
pair and API key are written in the web app's local-storage shape; the import stores them
in Vault with no Ethereum key anywhere, and dydx3 built from Vault alone works. Bad exports
are refused with one line naming the file, and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.apply_runs import (
    MOUNT,
    Manifest,
    Result,
    assert_no_secret,
    cli,
    cli_captured,
    cli_subprocess,
    dydx3_client,
    make_accounts,
    read_secret,
    vault,
    versions,
)
from support.custody import (
    WebAppWallet,
    api_key_pairs,
    onboard_like_the_web_app,
    stark_key_pairs,
    wallet_secrets,
    whole_local_storage,
    write_export,
    write_signer_manifest,
)

from provisioner.clients.dydx import StarkKeyPair
from provisioner.content_metadata import matches_record, without_content_keys
from provisioner.sandbox.control import SandboxInfo
from provisioner.secrets import SecretResolver
from provisioner.signers import keystore
from provisioner.signers.local import LocalKeySigner

pytestmark = pytest.mark.sandbox


@dataclass
class Imported:
    manifest: Manifest
    wallet: WebAppWallet
    export: Path
    first: Result


@pytest.fixture(scope="module")
def imported(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imported]:
    """One wallet onboarded in the "web app", exported whole, imported into an import-only account."""
    tmp = tmp_path_factory.mktemp("import")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in sandbox.env().items():
            mp.setenv(name, value)
        [account] = make_accounts(
            sandbox, [{"name": "mm-delta", "deposit": "5", "api_keys": ["default", "hedger"]}]
        )
        wallet = onboard_like_the_web_app(sandbox, account.private_key)
        account.private_key = ""  # from here on the test holds no Ethereum key either
        m = write_signer_manifest(tmp, [account], {"mm-delta": None})
        export = write_export(
            tmp / "local-storage.json",
            whole_local_storage(stark_key_pairs(wallet), api_key_pairs(wallet)),
        )
        # No Ethereum key anywhere: no signer may be built, and no secret but the Vault token resolved.
        resolved: list[str] = []
        real_resolve = SecretResolver.resolve

        def spy(self: SecretResolver, ref, **kw):  # type: ignore[no-untyped-def]
            resolved.append(ref.describe())
            return real_resolve(self, ref, **kw)

        def no_local_key(*_args: object, **_kw: object) -> None:
            raise AssertionError("an Ethereum key was loaded")

        with pytest.MonkeyPatch.context() as spies:
            spies.setattr(SecretResolver, "resolve", spy)
            spies.setattr(LocalKeySigner, "__init__", no_local_key)
            spies.setattr(keystore, "decrypt_keystore", no_local_key)
            first = cli_captured(
                "import", "-f", str(m.path), "--account", "mm-delta", "--local-storage", str(export)
            )
        assert set(resolved) == {"env:VAULT_TOKEN"}, sorted(set(resolved))
        yield Imported(m, wallet, export, first)


def test_import_stores_the_web_app_keys(imported: Imported, sandbox: SandboxInfo) -> None:
    m, wallet = imported.manifest, imported.wallet
    assert imported.first.rc == 0, imported.first.text
    assert "written (version 1)" in imported.first.out
    assert f"dYdX position {wallet.position_id}" in imported.first.out
    stark = read_secret(sandbox, m.stark_path("mm-delta"))
    api = read_secret(sandbox, m.api_path("mm-delta", "default"))
    assert stark is not None and api is not None
    (stark_data, stark_meta), (api_data, api_meta) = stark, api
    for meta, data in ((stark_meta, stark_data), (api_meta, api_data)):
        custom = meta["custom_metadata"]
        assert without_content_keys(custom) == {
            "managed-by": "dydx-provisioner",
            "account": "mm-delta",
        }
        assert matches_record(custom, meta["version"], data)
    pair = StarkKeyPair.from_private_key(int(wallet.stark["private_key"], 16))
    assert stark_data["private_key"] == pair.private_key_hex  # one canonical form: 0x, no padding
    assert stark_data["public_key"] == pair.public_key_hex
    assert stark_data["public_key_y_coordinate"] == pair.public_key_y_hex
    assert stark_data["position_id"] == str(wallet.position_id)
    assert stark_data["ethereum_address"] == wallet.address
    assert {k: api_data[k] for k in ("key", "secret", "passphrase")} == wallet.api
    assert read_secret(sandbox, m.api_path("mm-delta", "hedger")) is None


def test_dydx3_built_from_vault_alone_makes_authenticated_calls(
    imported: Imported, sandbox: SandboxInfo
) -> None:
    m = imported.manifest
    stark = read_secret(sandbox, m.stark_path("mm-delta"))
    api = read_secret(sandbox, m.api_path("mm-delta", "default"))
    assert stark is not None and api is not None
    bot = dydx3_client(sandbox, api[0], stark[0]["private_key"])
    [account] = bot.private.get_accounts().data["accounts"]
    assert int(account["starkKey"], 16) == int(bot.stark_public_key, 16)
    assert account["id"] == stark[0]["account_id"]
    assert int(account["positionId"]) == int(stark[0]["position_id"])
    assert bot.private.get_user().data["user"]["ethereumAddress"].lower() == (
        imported.wallet.address.lower()
    )
    assert api[0]["key"] in {k["key"] for k in bot.private.get_api_keys().data["apiKeys"]}
    assert bot.private.get_registration().data["signature"].startswith("0x")


def test_plan_shows_the_imported_steps_done_and_the_rest_blocked(
    imported: Imported, capsys, monkeypatch: pytest.MonkeyPatch, sandbox: SandboxInfo
) -> None:  # type: ignore[no-untyped-def]
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    plan = cli(capsys, "plan", "-f", str(imported.manifest.path), "--format", "json")
    assert plan.rc == 0, plan.text
    [account] = json.loads(plan.out)["accounts"]
    steps = {s["id"].split("/", 1)[1]: s["blocked"] for s in account["steps"]}
    assert list(steps) == ["register", "approve", "deposit", "api_key/hedger"]
    assert "creating an API key is signed with the Ethereum key" in steps["api_key/hedger"]
    assert "registration needs an Ethereum signer" in steps["register"]
    assert "a deposit needs an Ethereum signer" in steps["deposit"]
    assert all(b and b.startswith("no signer (import-only account)") for b in steps.values())
    assert_no_secret(plan.text, wallet_secrets(imported.wallet), "plan output")


def test_importing_again_in_another_accepted_shape_changes_nothing(
    imported: Imported, tmp_path: Path, sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two values alone, decoded, hex with 0x and in upper case, leading zeros lost."""
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    wallet, m = imported.wallet, imported.manifest
    before = versions(sandbox, m.destinations())
    stark = stark_key_pairs(
        wallet,
        privateKey="0X" + f"{int(wallet.stark['private_key'], 16):X}",
        publicKey="0x" + f"{int(wallet.stark['public_key'], 16):x}",
        publicKeyYCoordinate=f"{int(wallet.stark['public_key_y_coordinate'], 16):X}",
    )
    export = write_export(
        tmp_path / "two-values.json",
        {"STARK_KEY_PAIRS": stark, "API_KEY_PAIRS": api_key_pairs(wallet)},
    )
    again = cli_captured(
        "import", "-f", str(m.path), "--account", "mm-delta", "--local-storage", str(export)
    )
    assert again.rc == 0, again.text
    assert again.out.count("already there, unchanged") == 2
    assert versions(sandbox, m.destinations()) == before
    assert_no_secret(imported.first.text + again.text, wallet_secrets(wallet), "import output")


# -- refusals --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def target(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imported]:
    """A second web-app wallet, not imported: the destination of the bad exports."""
    tmp = tmp_path_factory.mktemp("refused")
    [account] = make_accounts(sandbox, [{"name": "mm-echo", "deposit": "0"}])
    wallet = onboard_like_the_web_app(sandbox, account.private_key)
    m = write_signer_manifest(tmp, [account], {"mm-echo": None})
    yield Imported(m, wallet, tmp, Result(0, "", ""))


def _refused(sandbox: SandboxInfo, target: Imported, export: Path, *fragments: str) -> str:
    res = cli_captured(
        "import",
        "-f",
        str(target.manifest.path),
        "--account",
        "mm-echo",
        "--local-storage",
        str(export),
    )
    assert res.rc == 1, res.text
    assert res.out == ""
    message = res.err.strip()
    assert "\n" not in message, message
    assert message.startswith(f"error: {export}: "), message
    assert "expected" in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert_no_secret(res.text, wallet_secrets(target.wallet), "the refusal")
    assert all(v is None for v in versions(sandbox, target.manifest.destinations()).values()), (
        "something was written"
    )
    return message


@pytest.fixture
def env(sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch) -> SandboxInfo:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    return sandbox


def test_wrong_shape_is_refused(env: SandboxInfo, target: Imported, tmp_path: Path) -> None:
    w = target.wallet
    cases: list[tuple[Any, str]] = [
        ("this is not JSON", "not valid JSON"),
        ([stark_key_pairs(w)], "the file holds a JSON array"),
        ({"STARK_KEY_PAIRS": json.dumps(stark_key_pairs(w))}, "no API_KEY_PAIRS"),
        (
            {
                "STARK_KEY_PAIRS": stark_key_pairs(w)[w.address.lower()],
                "API_KEY_PAIRS": api_key_pairs(w),
            },
            "not under a wallet address",
        ),
        (
            {
                "STARK_KEY_PAIRS": stark_key_pairs(w),
                "API_KEY_PAIRS": api_key_pairs(w, secret="a+b/c"),
            },
            "secret is not base64url",
        ),
    ]
    for i, (doc, fragment) in enumerate(cases):
        _refused(env, target, write_export(tmp_path / f"shape-{i}.json", doc), fragment)


def test_a_key_pair_that_does_not_match_is_refused(
    env: SandboxInfo, target: Imported, tmp_path: Path
) -> None:
    w = target.wallet
    other = StarkKeyPair.from_private_key(int(w.stark["private_key"], 16) + 1)
    stark = stark_key_pairs(
        w, publicKey=f"{other.public_key:064x}", publicKeyYCoordinate=f"{other.public_key_y:064x}"
    )
    export = write_export(tmp_path / "mismatch.json", whole_local_storage(stark, api_key_pairs(w)))
    _refused(env, target, export, "publicKey is not the public key of privateKey")


def test_a_consistent_pair_that_dydx_does_not_have_is_refused(
    env: SandboxInfo, target: Imported, tmp_path: Path
) -> None:
    w = target.wallet
    other = StarkKeyPair.from_private_key(int(w.stark["private_key"], 16) + 1)
    stark = stark_key_pairs(
        w,
        privateKey=f"{other.private_key:x}",
        publicKey=f"{other.public_key:x}",
        publicKeyYCoordinate=f"{other.public_key_y:x}",
    )
    export = write_export(tmp_path / "not-dydx.json", whole_local_storage(stark, api_key_pairs(w)))
    message = _refused(env, target, export, f"the export's is {other.public_key_hex}")
    assert_no_secret(message, [other.private_key_hex], "the refusal")


def test_a_dead_api_key_is_refused(env: SandboxInfo, target: Imported, tmp_path: Path) -> None:
    w = target.wallet
    extra = w.client.eth_private.create_api_key(ethereum_address=w.address).data["apiKey"]
    w.client.eth_private.delete_api_key(api_key=extra["key"], ethereum_address=w.address)
    api = api_key_pairs(w, key=extra["key"], secret=extra["secret"], passphrase=extra["passphrase"])
    export = write_export(tmp_path / "dead-key.json", whole_local_storage(stark_key_pairs(w), api))
    message = _refused(env, target, export, f"dYdX refused API key {extra['key']}")
    assert_no_secret(message, [extra["secret"], extra["passphrase"]], "the refusal")


def test_an_export_of_another_wallet_is_refused(
    env: SandboxInfo, target: Imported, imported: Imported, tmp_path: Path
) -> None:
    other = imported.wallet
    export = write_export(
        tmp_path / "other-wallet.json",
        whole_local_storage(stark_key_pairs(other), api_key_pairs(other)),
    )
    message = _refused(
        env, target, export, f"no entry for {target.wallet.address}", other.address.lower()
    )
    assert_no_secret(message, wallet_secrets(other), "the refusal")


def test_another_wallets_keys_filed_under_this_address_are_refused(
    env: SandboxInfo, target: Imported, imported: Imported, tmp_path: Path
) -> None:
    """The pair and API key are sound but belong to another wallet: dYdX reads no account for them."""
    other, here = imported.wallet, target.wallet.address.lower()
    stark = {here: {**stark_key_pairs(other)[other.address.lower()], "walletAddress": here}}
    api = {here: {**api_key_pairs(other)[other.address.lower()], "walletAddress": here}}
    export = write_export(tmp_path / "misfiled.json", whole_local_storage(stark, api))
    _refused(env, target, export, "belongs to another wallet")


def test_foreign_data_at_a_destination_is_refused_and_left_alone(
    env: SandboxInfo, target: Imported, tmp_path: Path
) -> None:
    w, m = target.wallet, target.manifest
    path = m.api_path("mm-echo", "default")
    kv = vault(env).secrets.kv.v2
    kv.create_or_update_secret(path=path, secret={"note": "an operator's"}, mount_point=MOUNT)
    try:
        export = write_export(
            tmp_path / "good.json", whole_local_storage(stark_key_pairs(w), api_key_pairs(w))
        )
        res = cli_captured(
            "import", "-f", str(m.path), "--account", "mm-echo", "--local-storage", str(export)
        )
        assert res.rc == 1 and "not written by dydx-provisioner" in res.err, res.text
        assert read_secret(env, m.stark_path("mm-echo")) is None, "the STARK key was written"
        assert read_secret(env, path) is not None and read_secret(env, path)[0] == {
            "note": "an operator's"
        }  # type: ignore[index]
    finally:
        kv.delete_metadata_and_all_versions(path=path, mount_point=MOUNT)


def test_the_real_command_exits_1_with_one_line_for_an_unknown_account(
    env: SandboxInfo, target: Imported
) -> None:
    res = cli_subprocess(
        env,
        "import",
        "-f",
        str(target.manifest.path),
        "--account",
        "nobody",
        "--local-storage",
        "x.json",
    )
    assert res.rc == 1 and res.out == ""
    assert res.err.strip() == (
        f"error: --account nobody: no such account in {target.manifest.path}; expected one of: mm-echo"
    )


def test_an_unexpected_error_during_import_is_masked_by_the_runs_redactor(
    env: SandboxInfo, target: Imported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """import shares the run's one redactor (issue 16): a bug whose message quotes a key the
    export held, raised past every ProvisionerError handler, is still masked by main."""
    from provisioner.clients.vault import VaultClient

    w = target.wallet
    export = write_export(
        tmp_path / "good.json", whole_local_storage(stark_key_pairs(w), api_key_pairs(w))
    )
    leaked = " ".join(wallet_secrets(w))

    def buggy_connect(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"a bug that quotes {leaked}")

    monkeypatch.setattr(VaultClient, "connect", buggy_connect)
    res = cli_captured(
        "import",
        "-f",
        str(target.manifest.path),
        "--account",
        "mm-echo",
        "--local-storage",
        str(export),
    )
    assert res.rc == 1 and "unexpected RuntimeError" in res.err, res.text
    assert_no_secret(res.text, wallet_secrets(w), "the unexpected error")
