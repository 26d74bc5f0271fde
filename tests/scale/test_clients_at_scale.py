"""Client paths that only show at scale: capability checks for hundreds of accounts, the hand-rolled
ABI words of the batched chain reads, and the deposit scan's refresh over a long chain.

The transport's own tests are in tests/clients/test_transport.py."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from provisioner.clients import chain
from provisioner.clients.chain import abi
from provisioner.clients.vault import VaultClient
from provisioner.manifest.model import SecretRef, VaultAuth, VaultSpec
from provisioner.redact import Redactor
from provisioner.sandbox.control import SandboxInfo
from provisioner.secrets import SecretResolver


@pytest.mark.sandbox
def test_capabilities_for_more_paths_than_one_request_may_carry(sandbox: SandboxInfo) -> None:
    redactor = Redactor()
    resolver = SecretResolver(redactor, {"T": sandbox.vault_token})
    spec = VaultSpec(
        address=sandbox.vault_addr, auth=VaultAuth(method="token", token=SecretRef("env", "T"))
    )
    vault = VaultClient.connect(spec, resolver, redactor)
    wanted = {vault.data_path(f"scale/acct-{i}/stark"): {"read", "create"} for i in range(1500)}
    assert vault.missing_capabilities(wanted) == {}  # the root token has them all


@pytest.mark.parametrize(
    ("signature", "types", "args"),
    [
        ("balanceOf(address)", ["address"], ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]),
        (
            "allowance(address,address)",
            ["address", "address"],
            ["0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "0x" + "AB" * 20],
        ),
        ("getEthKey(uint256)", ["uint256"], [2**255 + 12345]),
        ("deposit(uint256,uint256,uint256,uint256)", ["uint256"] * 4, [1, 0, 2**256 - 1, 7]),
        (
            "registerUser(address,uint256,bytes)",
            ["address", "uint256", "bytes"],
            ["0x" + "11" * 20, 5, b"\x01" * 65],
        ),
    ],
)
def test_calldata_matches_eth_abi(signature: str, types: list[str], args: list[object]) -> None:
    expected = "0x" + (function_signature_to_4byte_selector(signature) + encode(types, args)).hex()
    assert abi.calldata(signature, types, args) == expected


def test_a_deposit_refresh_reads_only_new_blocks_and_rereads_the_unfinal_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from provisioner.manifest.model import NetworkSpec
    from provisioner.networks import SEPOLIA

    network = NetworkSpec(
        name="sepolia",
        chain_id=SEPOLIA.chain_id,
        api_url=SEPOLIA.api_url,
        rpc_url="http://127.0.0.1:9",
        exchange_contract=SEPOLIA.exchange_contract,
        usdc_contract=SEPOLIA.usdc_contract,
        collateral_asset_id=SEPOLIA.collateral_asset_id,
    )
    client = chain.ChainClient("http://127.0.0.1:9", network)
    events = {10: ((1, 1), 5), 200: ((1, 1), 7), 290: ((2, 1), 1)}  # block -> (key, amount)
    head = {"block": 250}
    asked: list[tuple[int, int]] = []

    def logs(first: int, latest: int) -> list[tuple[int, tuple[int, int], int]]:
        asked.append((first, latest))
        return [(b, k, q) for b, (k, q) in sorted(events.items()) if first <= b <= latest]

    monkeypatch.setattr(client._deposits, "block_number", lambda: head["block"])
    monkeypatch.setattr(client._deposits, "logs", logs)
    assert client.deposits() == {(1, 1): 12}
    head["block"] = 300
    assert client.deposits(refresh=True) == {(1, 1): 12, (2, 1): 1}
    assert asked == [(0, 250), (250 - chain.FINAL_AFTER_BLOCKS + 1, 300)]
    del events[290]  # a reorg within the last blocks drops an event: it goes away
    assert client.deposits(refresh=True) == {(1, 1): 12}
