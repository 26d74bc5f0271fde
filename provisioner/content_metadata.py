"""What apply records about a secret's content in its KV v2 custom_metadata, next to ownership.

A pull-request plan (``plan --untrusted-manifest``) runs with a Vault role that reads
metadata only, so everything it judges a destination by must be in the metadata:

- ``content-version``: the KV version the record describes. A current version other
  than this one was written by someone else (or by a run that died between metadata and
  data): the record says nothing about it, and the plan says so.
- ``fields``: the names of the data's keys, so completeness is judged without the data.
- ``public.<field>``: the data's non-secret values (STARK public key, Ethereum address,
  position and account ids, the API key's id, network), which the planner and the chain
  checks need. They are public: on chain, or shown by dYdX to anyone who asks.
- ``content-sha256``: ``sha256("dydx-provisioner content v1\\n" + canonical JSON)``, the
  JSON of the whole data with sorted keys, no whitespace, UTF-8. It reveals nothing: every
  record it is computed over holds high-entropy secret material (a 252-bit STARK private
  key; a 40-character API secret and a 20-character passphrase), so neither inverting the
  hash nor confirming a guessed content is feasible, and the rest of the content is in the
  metadata already. It lets a reader of the data (the drift check) tell that the current
  version is exactly what apply wrote. No digest is recorded over data without a secret
  field, where a guess could be confirmed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass

META_CONTENT_VERSION = "content-version"
META_CONTENT_DIGEST = "content-sha256"
META_FIELDS = "fields"
META_PUBLIC = "public."
OWN_KEYS = frozenset({META_CONTENT_VERSION, META_CONTENT_DIGEST, META_FIELDS})
_DOMAIN = b"dydx-provisioner content v1\n"


@dataclass(frozen=True)
class RecordedContent:
    """What the metadata says the current version holds."""

    fields: frozenset[str]
    public: tuple[tuple[str, str], ...]


def content_digest(data: Mapping[str, str]) -> str:
    canonical = json.dumps(dict(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(_DOMAIN + canonical.encode("utf-8")).hexdigest()


def content_metadata(
    data: Mapping[str, str], secret_fields: Collection[str], version: int
) -> dict[str, str]:
    """The custom_metadata entries describing ``data`` as KV version ``version``."""
    meta = {
        META_CONTENT_VERSION: str(version),
        META_FIELDS: ",".join(sorted(data)),
        **{META_PUBLIC + k: v for k, v in data.items() if k not in secret_fields},
    }
    if any(k in data for k in secret_fields):
        meta[META_CONTENT_DIGEST] = content_digest(data)
    return meta


def without_content_keys(custom: Mapping[str, str]) -> dict[str, str]:
    """custom_metadata less what an earlier record of ours put there (kept: others' keys)."""
    return {k: v for k, v in custom.items() if k not in OWN_KEYS and not k.startswith(META_PUBLIC)}


def recorded_content(custom: Mapping[str, str], version: int) -> RecordedContent | None:
    """What the record says, if it describes ``version`` (the current one); else None."""
    if version <= 0 or custom.get(META_CONTENT_VERSION) != str(version):
        return None
    if META_CONTENT_DIGEST not in custom:
        return None
    fields = frozenset(f for f in custom.get(META_FIELDS, "").split(",") if f)
    public = tuple(
        sorted((k[len(META_PUBLIC) :], v) for k, v in custom.items() if k.startswith(META_PUBLIC))
    )
    return RecordedContent(fields=fields, public=public)


def matches_record(custom: Mapping[str, str], version: int, data: Mapping[str, str]) -> bool | None:
    """Whether ``data`` (version ``version``) is what the record describes; None: no record."""
    if recorded_content(custom, version) is None:
        return None
    return custom.get(META_CONTENT_DIGEST) == content_digest(data)
