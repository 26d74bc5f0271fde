"""rotate_after and rotation_overlap: on named API keys and in defaults; never on the default key."""

from __future__ import annotations

import pytest
from support.manifest import HEADER, errors, load, messages, one_account

from provisioner.manifest.durations import DurationProblem, format_duration, parse_duration
from provisioner.manifest.model import DEFAULT_ROTATION_OVERLAP

KEYS = """\
api_keys:
  - {name: default, secret: dydx/mm-alpha/api/default}
  - {name: quoter, secret: dydx/mm-alpha/api/quoter, rotate_after: 90d}
  - {name: hedger, secret: dydx/mm-alpha/api/hedger, rotate_after: 12h, rotation_overlap: 0s}
  - {name: reader, secret: dydx/mm-alpha/api/reader}
"""


def policies(text: str) -> dict[str, tuple[int | None, int]]:
    (account,) = load(text).accounts
    return {k.name: (k.rotate_after, k.rotation_overlap) for k in account.api_keys}


@pytest.mark.parametrize(
    "text, seconds",
    [("90d", 7_776_000), ("12h", 43_200), ("30m", 1_800), ("5s", 5), ("1h30m", 5_400), ("0s", 0)],
)
def test_durations_are_whole_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5x", "1.5h", "30m1h", "-5s", "5 s"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(DurationProblem):
        parse_duration(text)


def test_durations_read_back_as_a_person_reads_them() -> None:
    assert format_duration(91 * 86_400 + 7) == "91 d"
    assert format_duration(3_780) == "1 h 3 min"
    assert format_duration(90_061) == "1 d 1 h"
    assert format_duration(5) == "5 s"


def test_named_keys_carry_their_policy_and_the_overlap_defaults_to_an_hour() -> None:
    assert policies(one_account(KEYS)) == {
        "default": (None, DEFAULT_ROTATION_OVERLAP),
        "quoter": (7_776_000, 3_600),
        "hedger": (43_200, 0),
        "reader": (None, 3_600),
    }


def test_defaults_apply_to_named_keys_and_a_keys_own_value_wins() -> None:
    top = "defaults:\n  rotate_after: 30d\n  rotation_overlap: 2h\n"
    got = policies(one_account(KEYS, top=top))
    assert got["default"] == (None, DEFAULT_ROTATION_OVERLAP)  # never the default key
    assert got["quoter"] == (7_776_000, 7_200)
    assert got["hedger"] == (43_200, 0)
    assert got["reader"] == (2_592_000, 7_200)


def test_rotate_after_on_the_default_key_is_an_error_that_says_why() -> None:
    text = one_account(
        "api_keys:\n  - {name: default, secret: dydx/mm-alpha/api/default, rotate_after: 90d}\n"
    )
    (problem,) = errors(text)
    assert (problem.location.line, problem.location.column) == (11, 74)
    shown = str(problem)
    assert shown.startswith("provision.yaml:11:74: ")
    assert "the default API key cannot be rotated" in shown
    assert "derives it from the wallet's onboarding signature" in shown
    assert "never deleted" in shown


def test_the_default_key_in_defaults_api_keys_is_refused_too() -> None:
    text = (
        HEADER
        + "defaults:\n  api_keys:\n    - name: default\n      secret: d/{name}/default\n"
        + "      rotation_overlap: 1h\n"
        + one_account().removeprefix(HEADER)
    )
    (shown,) = messages(text)
    assert shown.startswith("provision.yaml:9:25: defaults.api_keys[0].rotation_overlap")
    assert "cannot be rotated" in shown


@pytest.mark.parametrize(
    "value, expected",
    [("90", "a duration such as 90d"), ("soon", "a duration such as 90d"), ("0s", "above zero")],
)
def test_a_bad_rotate_after_names_its_place(value: str, expected: str) -> None:
    text = one_account(
        f"api_keys:\n  - name: quoter\n    secret: dydx/mm-alpha/api/quoter\n    rotate_after: {value!r}\n"
    )
    (shown,) = messages(text)
    assert shown.startswith("provision.yaml:13:23: ")
    assert expected in shown
