"""The schema file itself: valid JSON Schema 2020-12, and every definition in use."""

from __future__ import annotations

import json
import re

from jsonschema import Draft202012Validator

from provisioner.manifest.diagnostics import ManifestError
from provisioner.manifest.loader import parse_manifest
from provisioner.manifest.schema import INTERPOLATION_ALTERNATIVE, schema_text


def test_schema_is_valid_2020_12() -> None:
    schema = json.loads(schema_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_every_definition_is_used() -> None:
    text = schema_text()
    defined = set(json.loads(text)["$defs"])
    used = set(re.findall(r'"\$ref": "#/\$defs/([a-z_]+)"', text))
    assert used == defined


def test_patterns_are_portable_between_python_and_editors() -> None:
    # Python's re and ECMA-262 (editors) must read each pattern the same way: no Python-only syntax.
    text = schema_text()
    for pattern in re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', text):
        source = json.loads(f'"{pattern}"')
        assert "(?P" not in source and "\\A" not in source and "\\Z" not in source
        re.compile(source)


def test_every_pattern_lets_editors_accept_interpolation() -> None:
    text = schema_text()
    patterns = [json.loads(f'"{p}"') for p in re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', text)]
    assert patterns
    for pattern in patterns:
        assert pattern.endswith(INTERPOLATION_ALTERNATIVE + ")$"), pattern
        assert re.search(pattern, "${SOME_VAR}")


def test_the_loader_checks_patterns_strictly_after_interpolation() -> None:
    text = (
        "version: 1\nnetwork: sandbox\nvault:\n  address: $${VAULT_ADDR}\n"
        'accounts:\n  - {name: a, address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", deposit: 1,'
        " secrets: {stark_key: a/stark}}\n"
    )
    env = {"ETH_RPC_URL": "http://x", "DYDX_API_URL": "http://y"}
    try:
        parse_manifest(text, "provision.yaml", env)
    except ManifestError as exc:
        (diagnostic,) = exc.diagnostics
        assert str(diagnostic).startswith(
            "provision.yaml:4:12: vault.address '${VAULT_ADDR}' is not valid"
        )
    else:
        raise AssertionError("a literal ${VAULT_ADDR} was accepted as a URL")
