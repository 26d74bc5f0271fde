"""Fencing: no side effect without the lease (issue #14).

The executor hands each account's steps clients wrapped here: every method of a port
that writes (a secret or journal entry in Vault, a POST or DELETE at dYdX, a broadcast,
by the node or by a remote signer) first calls the account's fence, ``AccountLocks.check``,
which raises ``LeaseLost`` unless this run still holds that account's lock and its run lease
with time to spare. The reads pass straight through. Steps see only the ports
(apply/ports.py), so a write they could make without the fence would have to be a port
method missing here, which the type checker refuses: each wrapper implements its port.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.apply.ports import ApplyConnections, ChainPort, DydxPort, NoncePort, VaultPort
from provisioner.clients.chain import ChainAccount, NonceCheck, Receipt
from provisioner.clients.dydx import ApiCredentials, OnboardedAccount, StarkKeyPair
from provisioner.clients.transport import Transport
from provisioner.clients.vault import SecretRecord
from provisioner.manifest.model import Manifest
from provisioner.redact import Redactor
from provisioner.signers.base import EthSigner
from provisioner.signers.factory import SecretSource

Fence = Callable[[], None]
"""Returns when acting is safe; raises LeaseLost when it is not."""

# The port methods that change something outside this process, fenced below.
WRITES: dict[str, frozenset[str]] = {
    "vault": frozenset({"write_owned", "set_owned_metadata", "write_state", "delete_state"}),
    "dydx": frozenset({"onboard", "create_api_key", "delete_api_key"}),
    "chain": frozenset({"send_raw"}),
    "signer": frozenset({"send_transaction"}),
}


class FencedVault:
    def __init__(self, inner: VaultPort, fence: Fence) -> None:
        self._inner, self._fence = inner, fence

    def read(self, path: str) -> SecretRecord:
        return self._inner.read(path)

    def write_owned(
        self,
        path: str,
        data: Mapping[str, str],
        *,
        account: str,
        expected_version: int,
        current: SecretRecord | None = None,
    ) -> int:
        self._fence()
        return self._inner.write_owned(
            path,
            data,
            account=account,
            expected_version=expected_version,
            current=current,
        )

    def set_owned_metadata(self, path: str, metadata: Mapping[str, str], *, account: str) -> None:
        self._fence()
        self._inner.set_owned_metadata(path, metadata, account=account)

    def read_state(self, path: str) -> tuple[dict[str, Any], int] | None:
        return self._inner.read_state(path)

    def write_state(self, path: str, data: Mapping[str, Any], cas: int) -> int:
        self._fence()
        return self._inner.write_state(path, data, cas)

    def delete_state(self, path: str) -> None:
        self._fence()
        self._inner.delete_state(path)

    def list_state(self, prefix: str) -> list[str]:
        return self._inner.list_state(prefix)


class FencedDydx:
    def __init__(self, inner: DydxPort, fence: Fence) -> None:
        self._inner, self._fence = inner, fence

    def user_exists(self, address: str) -> bool:
        return self._inner.user_exists(address)

    def derive_stark_key(
        self, signer: EthSigner, *, check_deterministic: bool = True
    ) -> StarkKeyPair:
        return self._inner.derive_stark_key(signer, check_deterministic=check_deterministic)

    def recover_default_credentials(self, signer: EthSigner) -> ApiCredentials:
        return self._inner.recover_default_credentials(signer)

    def onboard(
        self, signer: EthSigner, stark: StarkKeyPair
    ) -> tuple[OnboardedAccount, ApiCredentials]:
        self._fence()
        return self._inner.onboard(signer, stark)

    def get_account(self, address: str, creds: ApiCredentials) -> OnboardedAccount:
        return self._inner.get_account(address, creds)

    def list_api_keys(self, address: str, creds: ApiCredentials) -> frozenset[str]:
        return self._inner.list_api_keys(address, creds)

    def registration_signature(self, address: str, creds: ApiCredentials) -> str:
        return self._inner.registration_signature(address, creds)

    def create_api_key(self, signer: EthSigner) -> ApiCredentials:
        self._fence()
        return self._inner.create_api_key(signer)

    def delete_api_key(self, signer: EthSigner, key: str, *, default_key: str) -> None:
        self._fence()
        self._inner.delete_api_key(signer, key, default_key=default_key)


class FencedChain:
    def __init__(self, inner: ChainPort, fence: Fence) -> None:
        self._inner, self._fence = inner, fence

    @property
    def nonces(self) -> NoncePort:
        return self._inner.nonces

    def read_accounts(
        self, items: Sequence[tuple[str, int | None]], *, block: int | str = "latest"
    ) -> dict[str, ChainAccount]:
        return self._inner.read_accounts(items, block=block)

    def deposits(self, from_block: int = 0, *, refresh: bool = False) -> dict[tuple[int, int], int]:
        return self._inner.deposits(from_block, refresh=refresh)

    def deposit_totals(
        self, from_block: int = 0, *, refresh: bool = False, confirmations: int | None = None
    ) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
        return self._inner.deposit_totals(from_block, refresh=refresh, confirmations=confirmations)

    def block_number(self) -> int:
        return self._inner.block_number()

    def head(self) -> int:
        return self._inner.head()

    def head_after(self, block: int, timeout: float) -> int:
        return self._inner.head_after(block, timeout)

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        return self._inner.transaction(tx_hash)

    def transaction_count_at(self, address: str, block: int) -> int:
        return self._inner.transaction_count_at(address, block)

    def build_register(
        self,
        sender: str,
        eth_key: str,
        stark_key: int,
        signature_hex: str,
        *,
        nonces: NonceCheck | None = None,
    ) -> dict[str, Any]:
        return self._inner.build_register(sender, eth_key, stark_key, signature_hex, nonces=nonces)

    def build_approve(
        self, owner: str, amount: int, *, nonces: NonceCheck | None = None
    ) -> dict[str, Any]:
        return self._inner.build_approve(owner, amount, nonces=nonces)

    def build_deposit(
        self,
        owner: str,
        stark_key: int,
        position_id: int,
        amount: int,
        *,
        nonces: NonceCheck | None = None,
    ) -> dict[str, Any]:
        return self._inner.build_deposit(owner, stark_key, position_id, amount, nonces=nonces)

    def hash_of_raw(self, raw: bytes) -> str:
        return self._inner.hash_of_raw(raw)

    def send_raw(self, raw: bytes) -> str:
        self._fence()
        return self._inner.send_raw(raw)

    def wait_for_receipt(self, tx_hash: str, timeout_seconds: float, **poll: float) -> Receipt:
        return self._inner.wait_for_receipt(tx_hash, timeout_seconds, **poll)

    def receipt(self, tx_hash: str) -> Receipt | None:
        return self._inner.receipt(tx_hash)

    def receipts(self, tx_hashes: Sequence[str]) -> dict[str, Receipt | None]:
        return self._inner.receipts(tx_hashes)

    def transaction_known(self, tx_hash: str) -> bool:
        return self._inner.transaction_known(tx_hash)

    def transaction_counts(self, address: str) -> tuple[int, int]:
        return self._inner.transaction_counts(address)


class FencedSigner:
    """A signer whose own broadcasts (a remote signer's eth_sendTransaction) are fenced;
    signing changes nothing outside and passes through."""

    def __init__(self, inner: EthSigner, fence: Fence) -> None:
        self._inner, self._fence = inner, fence

    def __repr__(self) -> str:
        return repr(self._inner)

    @property
    def address(self) -> str:
        return self._inner.address

    @property
    def can_sign_raw_transactions(self) -> bool:
        return self._inner.can_sign_raw_transactions

    def sign_typed_data(self, typed_data: dict[str, Any]) -> str:
        return self._inner.sign_typed_data(typed_data)

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        return self._inner.sign_transaction(tx)

    def send_transaction(self, tx: dict[str, Any]) -> str:
        self._fence()
        return self._inner.send_transaction(tx)


@dataclass(frozen=True)
class FencedConnections:
    """``conn`` with every write behind ``fence``."""

    manifest: Manifest
    redactor: Redactor
    resolver: SecretSource
    vault: VaultPort
    dydx: DydxPort
    chain: ChainPort
    log: Callable[[str], None]
    transport: Transport  # a remote signer's: its broadcasts go through FencedSigner

    @classmethod
    def around(cls, conn: ApplyConnections, fence: Fence) -> FencedConnections:
        return cls(
            manifest=conn.manifest,
            redactor=conn.redactor,
            resolver=conn.resolver,
            vault=FencedVault(conn.vault, fence),
            dydx=FencedDydx(conn.dydx, fence),
            chain=FencedChain(conn.chain, fence),
            log=conn.log,
            transport=conn.transport,
        )
