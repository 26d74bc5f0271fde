"""Reading the web app's local-storage export: shapes, hex forms, the key pair, and refusals.

Secret values here are canaries: no error message may contain them in any form.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from provisioner.clients.dydx import StarkKeyPair
from provisioner.custody.local_storage import ExportError, load_export, parse_export
from provisioner.redact import Redactor

ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
WALLET = ADDRESS.lower()  # the web app files keys under the lower-case address
OTHER = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"
STARK_PRIVATE = int("c0ffee" * 10, 16)
PAIR = StarkKeyPair.from_private_key(STARK_PRIVATE)
API_KEY = "0b3a9c6e-41f2-4d7a-9e10-5c2b7d8e9f01"
API_SECRET = "CANARYsecretCANARYsecretCANARYsecret0000"  # 40 base64url characters, as dYdX issues
PASSPHRASE = "CANARYpassphrase0000"
SOURCE = "export.json"
CANARIES = [f"{STARK_PRIVATE:x}", API_SECRET, PASSPHRASE, "CANARY"]


def stark_entry(**over: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "walletAddress": WALLET,
        "publicKey": f"{PAIR.public_key:064x}",
        "publicKeyYCoordinate": f"{PAIR.public_key_y:064x}",
        "privateKey": f"{STARK_PRIVATE:064x}",
        "legacySigning": False,
        "walletType": "METAMASK",
    }
    entry.update(over)
    return {k: v for k, v in entry.items() if v is not None}


def api_entry(**over: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "walletAddress": WALLET,
        "key": API_KEY,
        "secret": API_SECRET,
        "passphrase": PASSPHRASE,
        "legacySigning": False,
        "walletType": "METAMASK",
    }
    entry.update(over)
    return {k: v for k, v in entry.items() if v is not None}


def whole_storage(stark: dict[str, Any] | None = None, api: dict[str, Any] | None = None) -> str:
    """``JSON.stringify(localStorage)``: every value a string, the two entries JSON text themselves."""
    return json.dumps(
        {
            "ONBOARDING_STATE": '"DONE"',
            "STARK_KEY_PAIRS": json.dumps({WALLET: stark or stark_entry()}),
            "API_KEY_PAIRS": json.dumps({WALLET: api or api_entry()}),
            "dydx.theme": "dark",
        }
    )


def parse(text: str, address: str = ADDRESS, on_secret: Any = None) -> Any:
    return parse_export(text, SOURCE, address, on_secret or (lambda _v: None))


def refused(text: str, *fragments: str, address: str = ADDRESS) -> str:
    with pytest.raises(ExportError) as err:
        parse(text, address)
    message = str(err.value)
    assert message.startswith(f"{SOURCE}: "), message
    assert "\n" not in message
    assert "expected" in message, message
    for fragment in fragments:
        assert fragment in message, message
    lowered = message.lower()
    for canary in CANARIES:
        assert canary.lower() not in lowered, "a secret leaked into the error"
    return message


# -- accepted shapes -------------------------------------------------------------------------


def test_whole_local_storage_export() -> None:
    keys = parse(whole_storage())
    assert keys.address == ADDRESS
    assert keys.stark == PAIR
    assert keys.stark.private_key == STARK_PRIVATE
    assert (keys.api.key, keys.api.secret, keys.api.passphrase) == (API_KEY, API_SECRET, PASSPHRASE)


def test_the_two_values_alone_as_strings_or_objects() -> None:
    as_strings = json.dumps(
        {
            "STARK_KEY_PAIRS": json.dumps({WALLET: stark_entry()}),
            "API_KEY_PAIRS": json.dumps({WALLET: api_entry()}),
        }
    )
    as_objects = json.dumps(
        {"STARK_KEY_PAIRS": {WALLET: stark_entry()}, "API_KEY_PAIRS": {WALLET: api_entry()}}
    )
    assert parse(as_strings) == parse(as_objects) == parse(whole_storage())


@pytest.mark.parametrize(
    "form",
    [
        lambda n: f"{n:x}",  # lost leading zeros
        lambda n: f"{n:064x}",
        lambda n: f"0x{n:064x}",
        lambda n: f"0X{n:X}",
        lambda n: f"  {n:064X}\n",
    ],
    ids=["no-leading-zeros", "padded", "0x-padded", "0X-upper", "spaces-upper"],
)
def test_hex_with_or_without_0x_any_case_and_lost_leading_zeros(form: Any) -> None:
    stark = stark_entry(
        privateKey=form(STARK_PRIVATE),
        publicKey=form(PAIR.public_key),
        publicKeyYCoordinate=form(PAIR.public_key_y),
    )
    assert parse(whole_storage(stark=stark)).stark == PAIR


def test_the_address_is_matched_in_any_letter_case_and_other_wallets_are_ignored() -> None:
    text = json.dumps(
        {
            "STARK_KEY_PAIRS": json.dumps(
                {ADDRESS: stark_entry(walletAddress=ADDRESS), OTHER: {"privateKey": "zz"}}
            ),
            "API_KEY_PAIRS": json.dumps({OTHER.upper(): {}, WALLET: api_entry()}),
        }
    )
    assert parse(text, ADDRESS.lower()).stark == PAIR


def test_a_missing_y_coordinate_is_derived() -> None:
    assert parse(whole_storage(stark=stark_entry(publicKeyYCoordinate=None))).stark == PAIR


def test_lost_base64_padding_is_restored_without_changing_the_secret_bytes() -> None:
    secret = base64.urlsafe_b64encode(b"\x01" * 31).decode()  # 44 characters ending in "="
    assert secret.endswith("=")
    keys = parse(whole_storage(api=api_entry(secret=secret.rstrip("="))))
    assert keys.api.secret == secret


def test_every_secret_is_handed_to_the_redactor_even_when_the_pair_is_refused() -> None:
    redactor = Redactor()
    stark = stark_entry(publicKey=f"{PAIR.public_key + 1:x}")
    with pytest.raises(ExportError):
        parse(whole_storage(stark=stark), on_secret=redactor.register)
    assert redactor.redact(f"{STARK_PRIVATE:064x}") == "***"
    assert redactor.redact(hex(STARK_PRIVATE)) == "***"
    redactor = Redactor()
    parse(whole_storage(), on_secret=redactor.register)
    assert redactor.redact(f"{API_SECRET} {PASSPHRASE}") == "*** ***"


# -- refused ---------------------------------------------------------------------------------


def test_not_json() -> None:
    refused("{STARK_KEY_PAIRS: nope", "not valid JSON", "line 1 column 2")


@pytest.mark.parametrize("doc", [[], "text", 3, None], ids=["array", "string", "number", "null"])
def test_not_an_object(doc: Any) -> None:
    refused(json.dumps(doc), "STARK_KEY_PAIRS and API_KEY_PAIRS")


def test_missing_entries() -> None:
    refused(json.dumps({"other": "x"}), "no STARK_KEY_PAIRS and no API_KEY_PAIRS")
    refused(json.dumps({"STARK_KEY_PAIRS": "{}"}), "no API_KEY_PAIRS")


def test_an_entry_of_the_wrong_type() -> None:
    text = json.dumps({"STARK_KEY_PAIRS": 7, "API_KEY_PAIRS": {WALLET: api_entry()}})
    refused(text, "STARK_KEY_PAIRS is a JSON number", "keyed by wallet address")
    text = json.dumps({"STARK_KEY_PAIRS": {WALLET: stark_entry()}, "API_KEY_PAIRS": "{oops"})
    refused(text, "API_KEY_PAIRS is a string but not JSON text")


def test_key_fields_not_filed_under_a_wallet_address() -> None:
    text = json.dumps({"STARK_KEY_PAIRS": stark_entry(), "API_KEY_PAIRS": {WALLET: api_entry()}})
    refused(text, "not under a wallet address", '{"0x…": {publicKey')


def test_address_mismatch_names_the_wallets_the_export_holds() -> None:
    message = refused(
        whole_storage(), f"no entry for {OTHER}", f"holds keys for {WALLET}", address=OTHER
    )
    assert "STARK_KEY_PAIRS" in message


def test_wallet_address_inside_the_entry_must_match() -> None:
    refused(whole_storage(api=api_entry(walletAddress=OTHER)), f"walletAddress is {OTHER}")


def test_two_entries_for_one_wallet_in_different_case() -> None:
    text = json.dumps(
        {
            "STARK_KEY_PAIRS": {WALLET: stark_entry(), ADDRESS: stark_entry(walletType="x")},
            "API_KEY_PAIRS": {WALLET: api_entry()},
        }
    )
    refused(text, "two different entries")


@pytest.mark.parametrize(
    ("stark", "fragment"),
    [
        ({"privateKey": None}, "has no privateKey"),
        ({"privateKey": 12345}, "privateKey is a JSON number"),
        ({"privateKey": "  "}, "privateKey is empty"),
        ({"privateKey": "0xc0ffee-c0ffee"}, "privateKey is not hexadecimal"),
        ({"privateKey": "0x0"}, "privateKey is out of range"),
        ({"privateKey": "f" * 64}, "privateKey is out of range"),
        (
            {"publicKey": f"{PAIR.public_key + 1:x}"},
            "publicKey is not the public key of privateKey",
        ),
        ({"publicKeyYCoordinate": "0x1"}, "publicKeyYCoordinate is not the y coordinate"),
    ],
    ids=["missing", "number", "empty", "not-hex", "zero", "too-big", "public", "y"],
)
def test_bad_stark_key_pair(stark: dict[str, Any], fragment: str) -> None:
    refused(whole_storage(stark=stark_entry(**stark)), f"STARK_KEY_PAIRS[{WALLET}]", fragment)


def test_a_key_pair_that_does_not_match_is_refused() -> None:
    other = StarkKeyPair.from_private_key(STARK_PRIVATE + 1)
    stark = stark_entry(
        publicKey=f"{other.public_key:x}", publicKeyYCoordinate=f"{other.public_key_y:x}"
    )
    refused(whole_storage(stark=stark), "publicKey is not the public key of privateKey")


@pytest.mark.parametrize(
    ("api", "fragment"),
    [
        ({"key": "not-a-key"}, "key is not an API key id"),
        ({"key": None}, "has no key"),
        ({"secret": "CANARY+secret/with/slashes"}, "secret is not base64url"),
        ({"secret": "CANARYsecretCANARYsecretCANARYsecret00001"}, "bad length"),
        ({"secret": ""}, "secret is empty"),
        ({"passphrase": None}, "has no passphrase"),
        ({"passphrase": ["CANARYpassphrase0000"]}, "passphrase is a JSON array"),
    ],
    ids=[
        "key-shape",
        "no-key",
        "secret-alphabet",
        "secret-length",
        "secret-empty",
        "no-pass",
        "pass-array",
    ],
)
def test_bad_api_key(api: dict[str, Any], fragment: str) -> None:
    refused(whole_storage(api=api_entry(**api)), f"API_KEY_PAIRS[{WALLET}]", fragment)


# -- the file --------------------------------------------------------------------------------


def test_load_export_reads_utf8_with_or_without_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(b"\xef\xbb\xbf" + whole_storage().encode())
    assert load_export(path, ADDRESS, lambda _v: None).stark == PAIR


def test_load_export_missing_or_binary_file(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"missing\.json: no such file; expected a JSON export"):
        load_export(tmp_path / "missing.json", ADDRESS, lambda _v: None)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ExportError, match=r"binary\.json: not UTF-8 text; expected"):
        load_export(binary, ADDRESS, lambda _v: None)
