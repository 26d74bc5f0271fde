"""No input makes the loader crash: seeded mutations of the examples and corpus end in a verdict, never a traceback."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator

import pytest
import yaml
from support.manifest import CORPUS, ENV, EXAMPLES

from provisioner.errors import ProvisionerError
from provisioner.manifest.loader import parse_manifest

SOURCES = [
    p.read_text(encoding="utf-8")
    for p in sorted(EXAMPLES.glob("*.yaml")) + sorted(CORPUS.glob("*.yaml"))
]
TOKENS = [
    "", "~", "[]", "{}", "-1", "1e3", "0x", "yes", "'", '"', "{", "}", "[", "]", ":", "- ", "&a",
    "*a", "!!binary x", "${X}", "$${", "${", "#", "\t", "\u00e9", "0x" + "a" * 64, "{vault: a}",
    "{env: X}", "[1, 2]", ".inf", "1:30", "<<: {}", "? a", "|\n  x",
]  # fmt: skip
VALUES: list[object] = [
    None, 0, -1, True, "", "x", "dydx/{name}/s", [], [1], {}, {"a": 1}, {"vault": "a#b"},
    {"env": "X"}, {"file": "f"}, {"remote": {"url": "http://x"}}, {"private_key": {"env": "K"}},
    [{"name": "x", "secret": "p"}], "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    {"method": "jwt"}, "mainnet",
]  # fmt: skip


def verdict(text: str) -> str:
    try:
        parse_manifest(text, "fuzz.yaml", ENV)
    except ProvisionerError as exc:
        assert "could not be understood" not in str(exc), text  # every refusal has a reason
        return "refused"
    return "accepted"


def text_mutations(seed: int, count: int) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(count):
        lines = rng.choice(SOURCES).splitlines()
        for _ in range(rng.randint(1, 4)):
            if not lines:
                break
            j = rng.randrange(len(lines))
            roll = rng.random()
            if roll < 0.3:
                del lines[j]
            elif roll < 0.7:
                k = rng.randrange(len(lines[j]) + 1)
                lines[j] = lines[j][:k] + rng.choice(TOKENS) + lines[j][k:]
            else:
                lines.insert(j, lines[rng.randrange(len(lines))])
        yield "\n".join(lines) + "\n"


def _paths(node: object, prefix: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


def shape_mutations(seed: int, count: int) -> Iterator[str]:
    rng = random.Random(seed)
    documents = [
        yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.yaml"))
    ]
    for _ in range(count):
        doc = copy.deepcopy(rng.choice(documents))
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(list(_paths(doc)))
            parent = doc
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = copy.deepcopy(rng.choice(VALUES))
        yield yaml.safe_dump(doc)


@pytest.mark.parametrize("seed", [1, 2])
def test_text_mutations_never_crash(seed: int) -> None:
    verdicts = {verdict(text) for text in text_mutations(seed, 250)}
    assert "refused" in verdicts


@pytest.mark.parametrize("seed", [1, 2])
def test_shape_mutations_never_crash(seed: int) -> None:
    verdicts = {verdict(text) for text in shape_mutations(seed, 250)}
    assert "refused" in verdicts
