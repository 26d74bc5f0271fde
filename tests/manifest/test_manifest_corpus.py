"""Every malformed manifest in corpus/ exits 1 with each problem at its file:line:col, and no traceback.

``validate --strict-env``, so that a variable the environment lacks is an error too; without
it those are warnings (the last test).

A corpus file declares what it expects in header comments:
    # expect: LINE:COL fragment of the message     (one per problem, all of them)
    # unset: NAME                                  (remove a variable from the environment)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.manifest import CORPUS, ENV

from provisioner.cli.main import main

CASES = sorted(CORPUS.glob("*.yaml"))
_EXPECT = re.compile(r"^# expect: (\d+):(\d+) (.+)$", re.M)
_UNSET = re.compile(r"^# unset: (\w+)$", re.M)


def expectations(path: Path) -> list[tuple[int, int, str]]:
    text = path.read_text(encoding="utf-8")
    return [(int(line), int(col), fragment) for line, col, fragment in _EXPECT.findall(text)]


@pytest.fixture
def corpus_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MANIFEST_TEST_UNSET_VAULT", raising=False)
    return monkeypatch


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    for path in CASES:
        assert expectations(path), f"{path.name} declares no '# expect:' line"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_corpus_case_text(
    path: Path, corpus_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in _UNSET.findall(path.read_text(encoding="utf-8")):
        corpus_env.delenv(name, raising=False)
    code = main(["validate", "-f", str(path), "--strict-env"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    assert out == ""  # problems go to stderr, like a compiler's

    lines = err.splitlines()
    located = re.compile(re.escape(str(path)) + r":\d+:\d+: ")
    diagnostics = [line for line in lines if located.match(line)]
    expected = expectations(path)
    for line, col, fragment in expected:
        prefix = f"{path}:{line}:{col}: "
        matching = [d for d in diagnostics if d.startswith(prefix) and fragment in d]
        assert matching, f"no '{prefix}...{fragment}' in:\n{err}"
    assert len(diagnostics) == len(expected), f"unexpected extra problems:\n{err}"
    for diagnostic in diagnostics:
        assert "; expected " in diagnostic  # every problem says what was expected
    count = len(expected)
    assert lines[-1] == f"{path}: {count} error{'s' if count != 1 else ''}"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_corpus_case_json(
    path: Path, corpus_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in _UNSET.findall(path.read_text(encoding="utf-8")):
        corpus_env.delenv(name, raising=False)
    code = main(["validate", "-f", str(path), "--format", "json", "--strict-env"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err == ""
    report = json.loads(out)
    assert report["valid"] is False
    found = {(e["line"], e["column"]) for e in report["errors"]}
    assert found == {(line, col) for line, col, _ in expectations(path)}
    for error in report["errors"]:
        assert error["file"] == str(path)
        assert error["message"] and error["expected"]
        assert (
            error["text"]
            == f"{path}:{error['line']}:{error['column']}: {error['message']}; expected {error['expected']}"
        )


@pytest.mark.parametrize("case", ["missing-env-var", "sandbox-without-api-url"])
def test_without_strict_env_a_missing_variable_is_a_warning_at_the_same_place(
    case: str, corpus_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = CORPUS / f"{case}.yaml"
    for name in _UNSET.findall(path.read_text(encoding="utf-8")):
        corpus_env.delenv(name, raising=False)
    code = main(["validate", "-f", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    ((line, col, _),) = expectations(path)
    (warning,) = err.splitlines()
    assert warning.startswith(f"{path}:{line}:{col}: warning: ") and warning.endswith(
        " at plan time"
    )
    assert "valid" in out and "plan will need" in out
