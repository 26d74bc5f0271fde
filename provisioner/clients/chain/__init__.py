"""The Ethereum node: batched reads, deposit events, and transactions we build ourselves.

``rpc`` sends JSON-RPC through the shared transport; ``abi`` encodes calldata and
decodes reverts; ``reads`` batches account reads; ``deposits`` scans and caches
LogDeposit events; ``transactions`` builds, nonces, broadcasts and waits.
"""

from provisioner.clients.chain.client import ChainClient
from provisioner.clients.chain.deposits import FINAL_AFTER_BLOCKS
from provisioner.clients.chain.errors import (
    ChainError,
    FeeTooHigh,
    NonceTaken,
    RevertError,
    RpcError,
)
from provisioner.clients.chain.reads import ChainAccount
from provisioner.clients.chain.rpc import ChainStats
from provisioner.clients.chain.transactions import NonceCheck, NonceManager, Receipt

__all__ = [
    "NonceCheck",
    "FINAL_AFTER_BLOCKS",
    "ChainAccount",
    "ChainClient",
    "ChainError",
    "ChainStats",
    "FeeTooHigh",
    "NonceManager",
    "NonceTaken",
    "Receipt",
    "RevertError",
    "RpcError",
]
