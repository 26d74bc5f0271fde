"""Deposits are exact decimals: never rounded through a binary float, at most 6 places, >= 0."""

from __future__ import annotations

from decimal import Decimal

import pytest
from support.manifest import load, messages, one_account

from provisioner.manifest.amounts import AmountProblem, parse_amount
from provisioner.money import to_base_units


def deposit_of(yaml_value: str) -> Decimal:
    text = one_account().replace('deposit: "10"', f"deposit: {yaml_value}")
    return load(text).accounts[0].deposit


@pytest.mark.parametrize(
    ("text", "expected", "base_units"),
    [
        ("8.2", "8.2", 8_200_000),
        ("0.29", "0.29", 290_000),
        ("1000000.000001", "1000000.000001", 1_000_000_000_001),
        ("1e3", "1000", 1_000_000_000),
        ("8.2000000", "8.2", 8_200_000),
        ("25000.50", "25000.5", 25_000_500_000),
        ("0.000001", "0.000001", 1),
        ("0", "0", 0),
        ("-0", "0", 0),
    ],
)
def test_exact_text_amounts(text: str, expected: str, base_units: int) -> None:
    amount = parse_amount(text)
    assert amount == Decimal(expected)
    assert str(amount) == expected  # canonical: no exponent, no trailing zeros
    assert to_base_units(amount) == base_units


def test_binary_floats_really_get_these_wrong() -> None:
    # The reason for all of this: the float nearest 8.2 is not 8.2.
    assert Decimal(8.2) != Decimal("8.2")
    assert Decimal(0.29) != Decimal("0.29")
    assert Decimal(1000000.000001) != Decimal("1000000.000001")


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [
        ("8.2", "8.2"),  # a YAML float, read from its source text
        ("0.29", "0.29"),
        ("1000000.000001", "1000000.000001"),
        ("1e3", "1000"),  # YAML 1.1 reads this as text; still exactly 1000
        ("1.0e+3", "1000"),  # a YAML 1.1 float with an exponent
        ("8.2000000", "8.2"),
        ('"8.2"', "8.2"),
        ("'0.29'", "0.29"),
        ("25000", "25000"),
        ("25_000.5", "25000.5"),
        ("0755", "755"),  # YAML 1.1 would read octal 493: kept as the decimal it looks like
    ],
)
def test_unquoted_and_quoted_yaml_amounts_are_exact(yaml_value: str, expected: str) -> None:
    amount = deposit_of(yaml_value)
    assert isinstance(amount, Decimal)
    assert amount == Decimal(expected)
    assert str(amount) == expected


@pytest.mark.parametrize(
    ("yaml_value", "fragment"),
    [
        ("0.0000001", "0.0000001 has more than 6 decimal places"),
        ('"0.0000001"', "0.0000001 has more than 6 decimal places"),
        ("1e-7", "0.0000001 has more than 6 decimal places"),
        ("8.2000001", "8.2000001 has more than 6 decimal places"),
        ("-1", "-1 is negative"),
        ('"-1"', "-1 is negative"),
        ("-0.5", "-0.5 is negative"),
        (".nan", "'.nan' is not valid"),
        ("-.inf", "'-.inf' is not valid"),
        ("0x10", "'0x10' is not valid"),
        ("1:30", "'1:30' is not valid"),
        ('"1e20"', "is more than 10^15 USDC"),
        ('"ten"', "'ten' is not valid"),
        ("true", "is a boolean"),
        ("", "is empty"),
    ],
)
def test_refused_amounts_say_why(yaml_value: str, fragment: str) -> None:
    text = one_account().replace('deposit: "10"', f"deposit: {yaml_value}")
    (message,) = messages(text)
    assert message.startswith("provision.yaml:8:")  # the deposit's line
    assert fragment in message
    assert "at most 6 decimal places, >= 0" in message


def test_parse_amount_refuses_binary_floats_outright() -> None:
    with pytest.raises(AmountProblem, match="float"):
        parse_amount(8.2)
    with pytest.raises(AmountProblem):
        parse_amount(True)


def test_max_deposit_follows_the_same_rules() -> None:
    assert load(one_account(top="max_deposit: 50000.25\n")).max_deposit == Decimal("50000.25")
    assert load(one_account()).max_deposit is None
    (message,) = messages(one_account(top='max_deposit: "1.0000001"\n'))
    assert "max_deposit 1.0000001 has more than 6 decimal places" in message


def test_defaults_deposit_is_exact_too() -> None:
    text = one_account(top="defaults:\n  deposit: 0.29\n").replace('    deposit: "10"\n', "")
    assert load(text).accounts[0].deposit == Decimal("0.29")
