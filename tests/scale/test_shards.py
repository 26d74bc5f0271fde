"""--shard I/N: every account in exactly one shard, by a hash of its name that no file edit moves."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from eth_utils import keccak, to_checksum_address

from provisioner.errors import ProvisionerError
from provisioner.manifest.loader import load_manifest
from provisioner.manifest.model import Manifest
from provisioner.session import parse_shard, select_accounts, shard_of

ENV = {"VAULT_ADDR": "http://127.0.0.1:8200", "ETH_RPC_URL": "http://127.0.0.1:8545"}


def _manifest(tmp_path: Path, names: list[str]) -> Manifest:
    doc = {
        "version": 1,
        "network": {
            "name": "sandbox",
            "chain_id": 11155111,
            "api_url": "http://127.0.0.1:8080",
            "rpc_url": "${ETH_RPC_URL}",
        },
        "vault": {"address": "${VAULT_ADDR}"},
        "defaults": {
            "deposit": "1",
            "secrets": {"stark_key": "dydx/{name}/stark"},
            "api_keys": [{"name": "default", "secret": "dydx/{name}/api/default"}],
        },
        "accounts": [
            {"name": n, "address": to_checksum_address(keccak(text=n)[:20])} for n in names
        ],
    }
    path = tmp_path / f"m{random.random()}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_manifest(path, ENV)


NAMES = [f"mm-{i:04d}" for i in range(1000)]


def test_shards_cover_every_account_exactly_once_and_are_balanced(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, NAMES)
    for count in (1, 2, 4, 7, 16):
        shards = [
            [a.name for a in select_accounts(manifest, [], parse_shard(f"{i}/{count}"))]
            for i in range(count)
        ]
        flat = [name for shard in shards for name in shard]
        assert sorted(flat) == sorted(NAMES), f"{count} shards: an account missing or twice"
        mean = len(NAMES) / count
        assert all(abs(len(s) - mean) <= 4 * mean**0.5 for s in shards), [  # 4 sigma
            len(s) for s in shards
        ]


def test_the_split_is_a_hash_of_the_name_not_of_the_file(tmp_path: Path) -> None:
    # fixed values: a new version of the tool must not move accounts between shards
    assert [shard_of(n, 4) for n in ("mm-alpha", "mm-beta", "mm-gamma", "mm-0000", "mm-0999")] == [
        3,
        3,
        3,
        1,
        0,
    ]
    assert [shard_of(n, 7) for n in ("mm-alpha", "mm-beta", "mm-gamma")] == [6, 3, 0]
    before = _manifest(tmp_path, NAMES[:200])
    shuffled = NAMES[:200] + ["mm-new-1", "mm-new-2"]
    random.Random(7).shuffle(shuffled)
    after = _manifest(tmp_path, shuffled)  # reordered, two accounts added
    for i in range(4):
        old = {a.name for a in select_accounts(before, [], (i, 4))}
        new = {a.name for a in select_accounts(after, [], (i, 4))}
        assert old <= new and new - old <= {"mm-new-1", "mm-new-2"}


def test_shard_and_target_combine(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, NAMES[:50])
    wanted = ["mm-0001", "mm-0002", "mm-0003", "mm-0004"]
    picked = select_accounts(manifest, wanted, (1, 2))
    assert {a.name for a in picked} == {n for n in wanted if shard_of(n, 2) == 1}


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "0/0", "1/2/3"])
def test_a_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(ProvisionerError, match="--shard"):
        parse_shard(text)
