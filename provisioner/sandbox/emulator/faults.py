"""Faults injected on purpose, per route, for tests of clients' retry and recovery.

A rule matches requests by method (``*`` for any) and path prefix, and can:
``latency_ms`` (delay, then go on), ``burst_429`` (the next N matching requests get
429 with rate-limit headers and ``Retry-After``), ``drop_rate`` (close the
connection without answering), ``error_rate`` with ``status`` (answer that status
with the errors envelope). ``times`` caps how many requests the rule touches in all.
Rates are probabilities in [0, 1]; ``seed`` makes the dice repeatable.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any, Literal

Outcome = Literal["pass", "error", "drop", "429"]

_FIELDS = {
    "method",
    "path",
    "error_rate",
    "status",
    "latency_ms",
    "drop_rate",
    "burst_429",
    "times",
    "seed",
}


@dataclass
class FaultRule:
    id: int
    method: str = "*"
    path: str = "/v3"
    error_rate: float = 0.0
    status: int = 500
    latency_ms: int = 0
    drop_rate: float = 0.0
    burst_429: int = 0
    times: int | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method == "*" or self.method == method) and path.startswith(self.path)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    latency_ms: int = 0
    outcome: Outcome = "pass"
    status: int = 0


def _rate(spec: dict[str, Any], name: str) -> float:
    value = spec.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number from 0 to 1")
    return float(value)


def _count(spec: dict[str, Any], name: str, default: int | None, upper: int) -> int | None:
    value = spec.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= upper:
        raise ValueError(f"{name} must be an integer from 0 to {upper}")
    return value


class FaultPlan:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._next_id = 1
        self._dice = random.Random()

    def rules(self) -> list[FaultRule]:
        return list(self._rules)

    def add(self, spec: Any) -> FaultRule:
        """Validate one rule given as JSON and add it; ValueError says what is wrong."""
        if not isinstance(spec, dict):
            raise ValueError("a fault rule is a JSON object")
        unknown = set(spec) - _FIELDS
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        method = spec.get("method", "*")
        path = spec.get("path", "/v3")
        if not isinstance(method, str) or not method:
            raise ValueError("method must be an HTTP method or *")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError("path must be a path prefix starting with /")
        status = _count(spec, "status", 500, 599)
        if status is None or status < 400:
            raise ValueError("status must be from 400 to 599")
        rule = FaultRule(
            id=self._next_id,
            method=method.upper(),
            path=path,
            error_rate=_rate(spec, "error_rate"),
            status=status,
            latency_ms=_count(spec, "latency_ms", 0, 120_000) or 0,
            drop_rate=_rate(spec, "drop_rate"),
            burst_429=_count(spec, "burst_429", 0, 1_000_000) or 0,
            times=_count(spec, "times", None, 1_000_000_000),
        )
        seed = spec.get("seed")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValueError("seed must be an integer")
            self._dice.seed(seed)
        self._next_id += 1
        self._rules.append(rule)
        return rule

    def clear(self) -> None:
        self._rules.clear()

    def decide(self, method: str, path: str) -> Verdict:
        """What to do to this request: the first matching rule that still has uses decides."""
        for rule in self._rules:
            if not rule.matches(method, path) or rule.times == 0:
                continue
            if rule.times is not None:
                rule.times -= 1
            if rule.burst_429 > 0:
                rule.burst_429 -= 1
                return Verdict(rule.latency_ms, "429", 429)
            if rule.drop_rate and self._dice.random() < rule.drop_rate:
                return Verdict(rule.latency_ms, "drop")
            if rule.error_rate and self._dice.random() < rule.error_rate:
                return Verdict(rule.latency_ms, "error", rule.status)
            return Verdict(rule.latency_ms)
        return Verdict()
