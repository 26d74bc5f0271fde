"""What apply records about a secret's content in custom_metadata (issue 16)."""

from __future__ import annotations

from provisioner.content_metadata import (
    META_CONTENT_DIGEST,
    content_digest,
    content_metadata,
    matches_record,
    recorded_content,
    without_content_keys,
)

SECRET_FIELDS = frozenset({"private_key", "secret", "passphrase"})
STARK = {
    "private_key": "0x" + "5" * 63,
    "public_key": "0x" + "a" * 63,
    "public_key_y_coordinate": "0x" + "b" * 63,
    "ethereum_address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "network": "sandbox",
}


def test_the_record_holds_fields_public_values_and_a_digest_never_a_secret() -> None:
    meta = content_metadata(STARK, SECRET_FIELDS, version=3)
    assert meta["content-version"] == "3"
    assert meta["fields"].split(",") == sorted(STARK)
    assert meta["public.public_key"] == STARK["public_key"]
    assert "public.private_key" not in meta
    assert all(STARK["private_key"] not in v for v in meta.values())
    assert meta[META_CONTENT_DIGEST] == content_digest(STARK)


def test_the_digest_is_over_a_canonical_form() -> None:
    assert content_digest(dict(reversed(list(STARK.items())))) == content_digest(STARK)
    assert content_digest({**STARK, "private_key": "0x" + "6" * 63}) != content_digest(STARK)


def test_no_digest_over_data_without_secret_material() -> None:
    meta = content_metadata({"ethereum_address": STARK["ethereum_address"]}, SECRET_FIELDS, 1)
    assert META_CONTENT_DIGEST not in meta
    assert recorded_content(meta, 1) is None


def test_a_record_describes_only_its_own_version() -> None:
    meta = content_metadata(STARK, SECRET_FIELDS, version=3)
    recorded = recorded_content(meta, 3)
    assert recorded is not None and recorded.fields == frozenset(STARK)
    assert dict(recorded.public)["ethereum_address"] == STARK["ethereum_address"]
    assert recorded_content(meta, 4) is None  # written behind our back since
    assert matches_record(meta, 3, STARK) is True
    assert matches_record(meta, 3, {**STARK, "network": "x"}) is False
    assert matches_record(meta, 4, STARK) is None


def test_an_earlier_record_is_dropped_and_others_keys_are_kept() -> None:
    meta = {**content_metadata(STARK, SECRET_FIELDS, 1), "team": "desk-a", "managed-by": "x"}
    assert without_content_keys(meta) == {"team": "desk-a", "managed-by": "x"}
