"""Each API key's age and rotation schedule, as the plan carries them and status shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class KeyAge:
    """One API key's age and rotation schedule, as plan and status show them (epoch seconds)."""

    name: str
    key_id: str | None  # the key the destination holds; None: none stored yet
    created_at: float | None  # when dYdX created it (or, lacking our record, Vault stored it)
    age: float | None
    rotate_after: int | None  # the policy, seconds; None: not rotated on a schedule
    next_rotation: float | None  # when it becomes due; None: never, or unknown
    previous_key: str | None = None  # the key it replaced, still live at dYdX
    previous_retires_at: float | None = None  # when the overlap of that key ends

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key_id,
            "created_at": iso(self.created_at),
            "age_seconds": None if self.age is None else int(self.age),
            "rotate_after_seconds": self.rotate_after,
            "next_rotation": iso(self.next_rotation),
            "previous_key": self.previous_key,
            "previous_key_retires_at": iso(self.previous_retires_at),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyAge:
        age = data.get("age_seconds")
        return cls(
            name=str(data["name"]),
            key_id=data.get("key"),
            created_at=parse_iso(data.get("created_at")),
            age=None if age is None else float(age),
            rotate_after=data.get("rotate_after_seconds"),
            next_rotation=parse_iso(data.get("next_rotation")),
            previous_key=data.get("previous_key"),
            previous_retires_at=parse_iso(data.get("previous_key_retires_at")),
        )


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
