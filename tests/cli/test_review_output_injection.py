"""A plan's text reaches the terminal as written: no markup of its own, no control codes.

`provision show PLAN` renders a file anyone can hand over; `plan`/`apply` render summaries,
reasons, notes and block texts that carry strings from Vault, dYdX and signers. They went
through rich's markup parser on a terminal (a plan file could clear the screen, set a
hyperlink, hide words, or crash show with MarkupError), and ESC went out everywhere.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from support.plans import fleet_plan

from provisioner.cli.output.lines import styled

REPO = Path(__file__).resolve().parents[2]
# what a color terminal may get from us: SGR (colors) only
SGR = re.compile(r"\x1b\[[0-9;]*m")


def _hostile_plan(tmp_path: Path, summary: str) -> Path:
    plan = fleet_plan(["mm-alpha"])
    acc = plan.accounts[0]
    steps = (replace(acc.steps[0], summary=summary), *acc.steps[1:])
    plan = replace(plan, accounts=(replace(acc, steps=steps),))
    path = tmp_path / "hostile.plan"
    path.write_text(plan.to_json())
    return path


def _show_on_a_terminal(plan_file: Path) -> tuple[int, str]:
    """``provision show`` with stdout and stderr on a pseudo-terminal, as a person runs it."""
    leader, follower = pty.openpty()
    env = {"PYTHONPATH": str(REPO), "PATH": os.defpath, "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "provisioner.cli.main", "show", str(plan_file)],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_show_on_a_terminal_prints_a_hostile_plan_literally(tmp_path: Path) -> None:
    summary = "derive [conceal]and hide this[/conceal] \x1b[2J\x1b]8;;https://evil.example\x1b\\x"
    code, out = _show_on_a_terminal(_hostile_plan(tmp_path, summary))
    assert code == 0, out
    assert "\x1b" not in SGR.sub("", out)  # no control code but colors
    assert "[conceal]and hide this[/conceal]" in out  # the text as written, not as markup


def test_show_on_a_terminal_survives_brackets(tmp_path: Path) -> None:
    code, out = _show_on_a_terminal(_hostile_plan(tmp_path, "store key [/red] at dydx/x"))
    assert code == 0, out
    assert "[/red]" in out


def test_show_without_a_terminal_prints_no_control_code(tmp_path: Path) -> None:
    path = _hostile_plan(tmp_path, "derive \x1b]0;owned\x07\x1b[2J the key")
    done = subprocess.run(
        [sys.executable, "-m", "provisioner.cli.main", "show", str(path)],
        env={"PYTHONPATH": str(REPO), "PATH": os.defpath},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout


def test_styled_keeps_words_in_brackets() -> None:
    # a Vault destination holding a key id like this, shown in a drift note
    assert "[redacted]" in styled("holds key [redacted], not the default key", color=True)


def test_the_live_summary_table_prints_an_error_with_brackets() -> None:
    import io

    from provisioner.apply.events import AccountResult, Finished
    from provisioner.cli.output.lines import Lines
    from provisioner.cli.output.live import LiveReporter
    from provisioner.redact import Redactor

    out, err = io.StringIO(), io.StringIO()
    error = "400 [/b] [x]"  # short: the table folds a long one
    with LiveReporter(Redactor(), Lines(out, err)) as live:
        live(Finished((AccountResult("mm-alpha", failed="mm-alpha/api_key", error=error),)))
    assert "400 [/b] [x]" in out.getvalue()


def test_plain_lines_carry_no_control_code_of_an_error() -> None:
    import io

    from provisioner.apply.events import AccountResult, Finished
    from provisioner.cli.output.lines import Lines
    from provisioner.cli.output.plain import PlainReporter
    from provisioner.redact import Redactor

    out, err = io.StringIO(), io.StringIO()
    error = "dYdX POST /v3/api-keys: 400 \x1b]0;owned\x07\x1b[2Jbad request"
    with PlainReporter(Redactor(), Lines(out, err)) as report:
        report(Finished((AccountResult("mm-alpha", failed="mm-alpha/api_key", error=error),)))
    assert "bad request" in err.getvalue()
    assert "\x1b" not in out.getvalue() + err.getvalue()
