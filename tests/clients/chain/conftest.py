"""The chain client against the session sandbox's anvil (stand-in exchange and USDC at the Sepolia addresses)."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

from collections.abc import Iterator

import pytest

from provisioner.clients.chain import ChainClient
from provisioner.manifest.model import NetworkSpec
from provisioner.networks import SEPOLIA
from provisioner.sandbox.control import SandboxInfo


@pytest.fixture(scope="session")
def network(sandbox: SandboxInfo) -> NetworkSpec:
    return NetworkSpec(
        name="sandbox",
        chain_id=SEPOLIA.chain_id,
        api_url=sandbox.api_url,
        rpc_url=sandbox.rpc_url,
        exchange_contract=SEPOLIA.exchange_contract,
        usdc_contract=SEPOLIA.usdc_contract,
        collateral_asset_id=SEPOLIA.collateral_asset_id,
    )


@pytest.fixture
def chain(network: NetworkSpec) -> Iterator[ChainClient]:
    with ChainClient(network.rpc_url, network) as client:
        yield client
