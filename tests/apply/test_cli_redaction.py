"""main() runs each command with one redactor: errors (expected or not), library log records
and Python warnings all pass through it. No sandbox needed: a stand-in command does the leaking."""

from __future__ import annotations

import argparse
import logging
import warnings

import pytest

from provisioner.cli import main as cli_main
from provisioner.cli.commands import validate
from provisioner.errors import ProvisionerError

SECRET = "canary-cli-secret-7f3a9c"


def _leaky(kind: str):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        args.redactor.register(SECRET)  # as the resolver would, where the value enters
        logging.getLogger("some.library").warning("connecting with token=%s", SECRET)
        warnings.warn(f"insecure request to http://u:{SECRET}@host", stacklevel=1)
        if kind == "expected":
            raise ProvisionerError(f"Vault refused token {SECRET}")
        if kind == "unexpected":
            raise RuntimeError(f"bug while holding {SECRET}")
        return 0

    return run


@pytest.mark.parametrize("verbose", [[], ["-v"], ["-vv"]])
@pytest.mark.parametrize("kind", ["expected", "unexpected", "none"])
def test_nothing_registered_leaks_through_main(
    kind: str, verbose: list[str], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(validate, "run", _leaky(kind))
    rc = cli_main.main([*verbose, "validate", "-f", "x.yaml"])
    out, err = capsys.readouterr()
    assert rc == (0 if kind == "none" else 1)
    assert SECRET not in out + err
    assert "***" in err  # the log record and the warning were printed, masked
    if kind == "expected":
        assert "error: Vault refused token ***" in err
    if kind == "unexpected":
        assert "error: unexpected RuntimeError: bug while holding ***" in err
        assert ("Traceback" in err) == bool(verbose)


def test_a_run_leaves_logging_as_it_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.setattr(validate, "run", _leaky("expected"))
    cli_main.main(["-vv", "validate", "-f", "x.yaml"])
    assert root.handlers == handlers and root.level == level
