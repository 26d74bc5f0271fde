"""Timestamps as v3 wrote them: ISO-8601 UTC with milliseconds and ``Z``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_from_ms(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def now_iso() -> str:
    return iso_from_ms(now_ms())


def parse_iso_ms(text: str) -> int:
    """Epoch milliseconds of an ISO-8601 timestamp; naive times are UTC. Raises ValueError."""
    if not isinstance(text, str) or not 10 <= len(text) <= 40:
        raise ValueError("not an ISO timestamp")
    value = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)
