"""The CLI's output against the sandbox, as a pipeline and a person see it: `plan --json` and
`apply --json` on stdout, the live display under a pseudo-terminal, plain lines without one."""

from __future__ import annotations

import json
import os
import re
from importlib.resources import files
from pathlib import Path

import pexpect
import pytest
from jsonschema import Draft202012Validator
from support.apply_runs import (
    PROVISION,
    REPO,
    assert_no_secret,
    cli_subprocess,
    make_accounts,
    secret_values,
    write_manifest,
)

from provisioner.sandbox.control import SandboxInfo

pytestmark = pytest.mark.sandbox

SPECS = [
    {"name": "alpha", "deposit": "3", "api_keys": ["default", "hedger"]},
    {"name": "beta", "deposit": "2", "api_keys": ["default"]},
    {"name": "gamma", "deposit": "1", "api_keys": ["default"]},
]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _manifest(sandbox: SandboxInfo, tmp_path: Path, tag: str):  # type: ignore[no-untyped-def]
    specs = [{**s, "name": f"{tag}-{s['name']}"} for s in SPECS]
    return write_manifest(tmp_path, make_accounts(sandbox, specs))


def _validator() -> Draft202012Validator:
    schema = json.loads(files("provisioner").joinpath("schemas", "events.schema.json").read_text())
    return Draft202012Validator(schema)


def test_plan_and_apply_json_streams(sandbox: SandboxInfo, tmp_path: Path) -> None:
    m = _manifest(sandbox, tmp_path, "js")
    validator = _validator()
    plan = cli_subprocess(sandbox, "plan", "-f", str(m.path), "--json")
    assert plan.rc == 0, plan.err
    docs = [json.loads(line) for line in plan.out.splitlines()]  # stdout: JSON only
    assert all(validator.is_valid(d) for d in docs)
    assert docs[0]["type"] == "version" and docs[-1]["type"] == "plan_summary"
    planned = [d for d in docs if d["type"] == "planned_step"]
    assert {d["account"] for d in planned} == {"js-alpha", "js-beta", "js-gamma"}
    changes = docs[-1]["changes"]
    runnable = [d for d in planned if not d["blocked"]]
    assert changes["add"] + changes["change"] + changes["destroy"] == len(runnable)

    refused = cli_subprocess(sandbox, "apply", "-f", str(m.path), "--json")
    assert refused.rc == 1 and "--auto-approve" in refused.err

    applied = cli_subprocess(
        sandbox, "apply", "-f", str(m.path), "--json", "--auto-approve", "--parallelism", "8"
    )
    assert applied.rc == 0, applied.err
    docs = [json.loads(line) for line in applied.out.splitlines()]
    for d in docs:
        assert validator.is_valid(d), d
    types = [d["type"] for d in docs]
    assert types.count("step_start") == types.count("step_complete") == len(runnable)
    assert types[-1] == "apply_summary"
    summary = docs[-1]
    assert summary["changes"]["failed"] == 0 and summary["changes"]["steps_done"] == len(runnable)
    started = [d for d in docs if d["type"] == "step_start"]
    assert all(d["step"]["id"].startswith(d["account"] + "/") for d in started)
    assert_no_secret(applied.out + applied.err, secret_values(sandbox, m), "apply --json")


def _spawn(sandbox: SandboxInfo, args: list[str], **env: str) -> pexpect.spawn:
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI")}
    environment.update(sandbox.env())
    environment.update({"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40", **env})
    return pexpect.spawn(
        PROVISION,
        args,
        env=environment,
        cwd=str(REPO),
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=180,
    )


def test_the_live_display_on_a_terminal(sandbox: SandboxInfo, tmp_path: Path) -> None:
    m = _manifest(sandbox, tmp_path, "tty")
    child = _spawn(sandbox, ["apply", "-f", str(m.path)])
    child.expect("Only 'yes' is accepted: ")  # a person is asked, on the terminal
    child.sendline("yes")
    child.expect(pexpect.EOF)
    child.close()
    screen = child.before
    assert child.exitstatus == 0, screen
    plain = ANSI.sub("", screen)
    assert re.search(r"Applying: \d of 3 account\(s\) done, 0 failed, \d left", plain)
    assert re.search(r"steps \d+ of \d+", plain) and "elapsed" in plain
    assert "\x1b[" in screen  # drawn in place, with control codes
    # the end: a table of every account, then the one summary line
    assert re.search(r"account\s+.\s+result\s+.\s+steps done", plain)
    for name in ("tty-alpha", "tty-beta", "tty-gamma"):
        assert re.search(rf"{name}\s+.\s+done\s+.\s+\d", plain)
    assert "Apply complete:" in plain and "0 account(s) failed" in plain
    assert ": done: " not in plain  # no line per step scrolling by


def test_no_color_on_a_terminal_means_plain_whole_lines(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    m = _manifest(sandbox, tmp_path, "dumb")
    child = _spawn(
        sandbox, ["apply", "-f", str(m.path), "--auto-approve", "--parallelism", "8"], NO_COLOR="1"
    )
    child.expect(pexpect.EOF)
    child.close()
    screen = child.before
    assert child.exitstatus == 0, screen
    assert "\x1b" not in screen
    names = ("dumb-alpha", "dumb-beta", "dumb-gamma")
    progress = [line for line in screen.splitlines() if line.startswith("  ") and ": " in line]
    assert progress
    step_lines = [line for line in progress if line.rstrip().endswith("...") or ": done: " in line]
    for line in step_lines:
        assert re.match(rf"  ({'|'.join(names)}): ", line), line
        assert len(re.findall(rf"  ({'|'.join(names)}): ", line)) == 1, line
    assert "Apply complete:" in screen
