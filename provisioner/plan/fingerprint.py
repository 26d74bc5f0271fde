"""A stable digest of the facts a plan was computed from; ``apply PLAN`` refuses a plan whose facts changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable
from dataclasses import fields
from functools import cache
from typing import Any, cast

from provisioner.facts import WorldFacts


def _encode(value: Any) -> Any:
    """What ``json`` cannot encode itself: dataclasses field by field, sets sorted, the rest as text.

    The encoder walks the containers itself and calls this only for what it cannot encode,
    so nothing is converted up front."""
    names = _field_names(cast(Hashable, type(value)))
    if names:
        return {name: getattr(value, name) for name in names}
    if isinstance(value, frozenset | set):
        return sorted(value, key=lambda v: json.dumps(v, sort_keys=True, default=_encode))
    return str(value)


@cache
def _field_names(cls: Any) -> tuple[str, ...]:
    if not hasattr(cls, "__dataclass_fields__"):
        return ()
    return tuple(f.name for f in fields(cls) if f.metadata.get("fingerprint", True))


def fingerprint(facts: WorldFacts) -> str:
    """sha256 over the facts; they hold no secret values, only versions, ids and amounts."""
    text = json.dumps(facts, sort_keys=True, default=_encode)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
