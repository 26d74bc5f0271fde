"""A stable digest of the facts a plan was computed from; ``apply PLAN`` refuses a plan whose facts changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Iterator
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
    """sha256 over the facts' JSON text; they hold no secret values, only versions, ids and amounts.

    The text is ``json.dumps(facts, sort_keys=True, default=_encode)``, hashed as it is made,
    one account at a time: at 10,000 accounts the whole text would be tens of MB at the
    plan's peak, for a digest of 32 bytes."""
    digest = hashlib.sha256()
    for chunk in _json_chunks(_encode(facts)):
        digest.update(chunk.encode())
    return "sha256:" + digest.hexdigest()


def _json_chunks(top: dict[str, Any]) -> Iterator[str]:
    """``json.dumps(top, sort_keys=True, default=_encode)`` in pieces: its lists item by item."""
    yield "{"
    for i, name in enumerate(sorted(top)):
        yield (", " if i else "") + json.dumps(name) + ": "
        value = top[name]
        if isinstance(value, list | tuple):
            yield "["
            for j, item in enumerate(value):
                yield (", " if j else "") + json.dumps(item, sort_keys=True, default=_encode)
            yield "]"
        else:
            yield json.dumps(value, sort_keys=True, default=_encode)
    yield "}"
