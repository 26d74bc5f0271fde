"""Issue #20 on the sandbox: a key with rotate_after is replaced by the first apply after it
has aged; the new credentials work with the official dydx3 client read from Vault alone; the
old key keeps working through the overlap and is gone at dYdX after it; plans are quiet
before and after. Also ``provision rotate`` and what status and the JSON plan show."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from dydx3 import DydxApiError
from support.apply_runs import (
    Manifest,
    Result,
    cli_captured,
    dydx3_client,
    make_accounts,
    read_secret,
    write_manifest,
)

from provisioner.records import META_KEY_CREATED, META_KEY_ID, META_REPLACES
from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox
SCHEMAS = Path(__file__).resolve().parents[2] / "provisioner" / "schemas"


@pytest.fixture
def env(sandbox: SandboxInfo) -> Iterator[SandboxInfo]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in sandbox.env().items():
            mp.setenv(name, value)
        mp.setenv("NO_COLOR", "1")
        mp.setenv("COLUMNS", "250")  # status's table on one line per account
        yield sandbox


def account_with_quoter(
    sandbox: SandboxInfo, tmp: Any, name: str, options: dict[str, str]
) -> Manifest:
    (acct,) = make_accounts(
        sandbox,
        [{"name": name, "api_keys": ["default", "quoter"], "key_options": {"quoter": options}}],
    )
    return write_manifest(tmp, [acct])


def run(*args: str) -> Result:
    return cli_captured(*args)


def quoter(sandbox: SandboxInfo, m: Manifest) -> tuple[dict[str, str], dict[str, Any]]:
    found = read_secret(sandbox, m.api_path(m.accounts[0].name, "quoter"))
    assert found is not None
    return found


def works(sandbox: SandboxInfo, creds: dict[str, str]) -> bool:
    """Whether the official client, given these credentials, is let in."""
    try:
        dydx3_client(sandbox, creds).private.get_api_keys()
    except DydxApiError as exc:
        assert exc.status_code in (401, 403), exc
        return False
    return True


def listed(sandbox: SandboxInfo, m: Manifest) -> set[str]:
    default = read_secret(sandbox, m.api_path(m.accounts[0].name, "default"))
    assert default is not None
    data = dydx3_client(sandbox, default[0]).private.get_api_keys().data
    return {k["key"] if isinstance(k, dict) else k for k in data["apiKeys"]}


def wait_until_older_than(sandbox: SandboxInfo, m: Manifest, seconds: float) -> None:
    """Sleep until the stored quoter key is ``seconds`` old by Vault's clock."""
    from provisioner.plan.ages import parse_iso

    _, meta = quoter(sandbox, m)
    whole = parse_iso(str(meta["created_time"]).split(".")[0] + "Z")
    assert whole is not None
    time.sleep(max(0.0, whole + 1 + seconds + 0.3 - time.time()))  # +1: the fraction cut off


def test_no_overlap_the_first_apply_after_five_seconds_replaces_the_key(
    env: SandboxInfo, tmp_path: Any
) -> None:
    m = account_with_quoter(
        env, tmp_path, "rot-zero", {"rotate_after": "5s", "rotation_overlap": "0s"}
    )
    f = str(m.path)
    first = run("apply", "-f", f, "--auto-approve")
    assert first.rc == 0, first.text
    old, _ = quoter(env, m)
    quiet = run("plan", "-f", f, "--detailed-exitcode")
    assert quiet.rc == 0, quiet.text  # before: younger than its policy
    wait_until_older_than(env, m, 5)
    due = run("plan", "-f", f, "--detailed-exitcode")
    assert due.rc == 2, due.text
    assert "rotate quoter: " in due.out and "old, policy 5 s" in due.out
    rotated = run("apply", "-f", f, "--auto-approve")
    assert rotated.rc == 0, rotated.text
    new, meta = quoter(env, m)
    assert new["key"] != old["key"]
    custom = meta["custom_metadata"]
    assert custom[META_KEY_ID] == new["key"] and custom[META_REPLACES] == old["key"]
    assert custom[META_KEY_CREATED].endswith("Z")
    assert works(env, new)
    assert not works(env, old)  # gone at dYdX
    assert old["key"] not in listed(env, m)
    after = run("plan", "-f", f, "--detailed-exitcode")
    assert after.rc == 0, after.text
    assert old["secret"] not in rotated.text + after.text and new["secret"] not in rotated.text


def test_with_an_overlap_both_keys_work_until_it_ends_then_only_the_new_one(
    env: SandboxInfo, tmp_path: Any
) -> None:
    m = account_with_quoter(
        env, tmp_path, "rot-lap", {"rotate_after": "5s", "rotation_overlap": "6s"}
    )
    f = str(m.path)
    assert run("apply", "-f", f, "--auto-approve").rc == 0
    old, _ = quoter(env, m)
    wait_until_older_than(env, m, 5)
    rotated = run("apply", "-f", f, "--auto-approve")
    assert rotated.rc == 0, rotated.text
    new, _ = quoter(env, m)
    assert new["key"] != old["key"], rotated.text
    assert works(env, new) and works(env, old)  # bots mid-rollover keep trading
    during = run("plan", "-f", f, "--detailed-exitcode", "--format", "json")
    assert during.rc == 0, during.text
    ages = {k["name"]: k for k in json.loads(during.out)["accounts"][0]["api_keys"]}
    assert ages["quoter"]["key"] == new["key"] and ages["quoter"]["previous_key"] == old["key"]
    assert ages["quoter"]["rotate_after_seconds"] == 5
    assert ages["default"]["rotate_after_seconds"] is None
    status = run("status", "-f", f, "--format", "json")
    (row,) = json.loads(status.out)["accounts"]
    assert [k["previous_key"] for k in row["api_key_rotation"]] == [None, old["key"]]
    again = run("apply", "-f", f, "--auto-approve")  # within the overlap: nothing deleted
    assert works(env, old), again.text
    wait_until_older_than(env, m, 6)
    retire = run("plan", "-f", f, "--detailed-exitcode")
    assert retire.rc == 2 and "retire the previous quoter key, replaced" in retire.out, retire.text
    retired = run("apply", "-f", f, "--auto-approve")
    assert retired.rc == 0, retired.text
    newest, _ = quoter(env, m)
    assert works(env, newest) and not works(env, old)
    assert old["key"] not in listed(env, m)
    # the policy is 5 s, so that apply also rotated again, after retiring: the key it
    # replaced is now the one in its overlap
    if newest["key"] != new["key"]:
        assert works(env, new) and "retire" in retired.out


def test_provision_rotate_replaces_a_young_key_now(env: SandboxInfo, tmp_path: Any) -> None:
    m = account_with_quoter(
        env, tmp_path, "rot-now", {"rotate_after": "90d", "rotation_overlap": "1h"}
    )
    f = str(m.path)
    assert run("apply", "-f", f, "--auto-approve").rc == 0
    old, _ = quoter(env, m)
    refused = run("rotate", "-f", f, "--account", "rot-now", "--key", "default", "--auto-approve")
    assert refused.rc == 1 and "cannot be rotated" in refused.err
    # no terminal, no --auto-approve: the plan is shown, nothing done
    asked = run("rotate", "-f", f, "--account", "rot-now", "--key", "quoter")
    assert asked.rc == 1 and "rotate quoter now" in asked.out, asked.text
    assert quoter(env, m)[0]["key"] == old["key"]
    done = run("rotate", "-f", f, "--account", "rot-now", "--key", "quoter", "--auto-approve")
    assert done.rc == 0, done.text
    new, _ = quoter(env, m)
    assert new["key"] != old["key"] and works(env, new) and works(env, old)
    text = run("status", "-f", f)
    assert re.search(r"quoter \d+ s, next in 89 d 23 h", text.out), text.out
    assert run("plan", "-f", f, "--detailed-exitcode").rc == 0
    due = run("rotate", "-f", f, "--due", "--auto-approve")  # nothing is due for 89 days
    assert due.rc == 0 and "Nothing to apply" in due.out, due.text
    assert quoter(env, m)[0]["key"] == new["key"]
    # again now: the key it replaced is in its overlap, so the rotation is blocked (it would be
    # left live and untracked), told as JSON events (issue 19) and on stderr, and exits 1
    args = ("rotate", "-f", f, "--account", "rot-now", "--key", "quoter", "--json")
    assert run(*args).rc == 1  # --json asks no question
    again = run(*args, "--auto-approve")
    assert again.rc == 1, again.text
    schema = json.loads((SCHEMAS / "events.schema.json").read_text())
    events = [json.loads(line) for line in again.out.splitlines()]
    for event in events:
        jsonschema.validate(event, schema)
    (planned,) = [e for e in events if e["type"] == "planned_step"]
    assert planned["step"]["kind"] == "rotate_api_key", planned
    assert "still in its overlap" in planned["blocked"] and "still in its overlap" in again.err
    assert quoter(env, m)[0]["key"] == new["key"] and works(env, old)
