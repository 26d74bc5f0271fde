"""Durations as the manifest writes them (``90d``, ``12h``, ``30m``, ``5s``, or combined: ``1h30m``),
read into whole seconds, and shown back the way a person reads them."""

from __future__ import annotations

import re

EXPECTED = "a duration such as 90d, 12h, 30m or 5s (units combine, largest first: 1h30m)"
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?")
_PART = re.compile(r"([0-9]+)([dhms])")


class DurationProblem(ValueError):
    pass


def parse_duration(text: object) -> int:
    """Whole seconds; DurationProblem saying what is wrong."""
    if not isinstance(text, str) or not text or not _DURATION.fullmatch(text):
        raise DurationProblem(f"is {text!r}, not a duration")
    return sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """The largest unit and the next one, rounded down: "91 d", "1 h 3 min", "42 s"."""
    left = max(0, int(seconds))
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    for i, (unit, size) in enumerate(units):
        if left >= size or unit == "s":
            text = f"{left // size} {unit}"
            if i + 1 < len(units):
                next_unit, next_size = units[i + 1]
                rest = (left % size) // next_size
                if rest:
                    text += f" {rest} {next_unit}"
            return text
    raise AssertionError("unreachable: seconds is the last unit")
