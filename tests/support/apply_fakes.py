"""In-memory Vault, dYdX and chain behind apply's ports (provisioner/apply/ports.py).

They keep state the way the real services do (KV v2 versions and check-and-set, a
user's API keys, deposits credited once mined) and record every write in one ordered
``log``, so tests can assert what happened and in which order (journal before
broadcast, secret stored before the journal entry is dropped). The signer is real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import rlp
from eth_account import Account
from eth_utils import keccak
from support.transport import FakeTransport

from provisioner.clients.chain import ChainAccount, ChainError, NonceCheck, NonceTaken, Receipt
from provisioner.clients.chain.head import ChainHead
from provisioner.clients.dydx import (
    ApiCredentials,
    DydxError,
    OnboardedAccount,
    StarkKeyPair,
)
from provisioner.clients.vault import CasConflict, ForeignSecret, SecretRecord, VaultError
from provisioner.facts import VaultEntry
from provisioner.manifest.model import (
    AccountSpec,
    ApiKeySpec,
    Manifest,
    NetworkSpec,
    PrivateKeySigner,
    SecretRef,
    VaultAuth,
    VaultSpec,
)
from provisioner.networks import SEPOLIA
from provisioner.plan.model import AccountPlan, Action, Plan, Step, StepKind
from provisioner.plan.params import ApproveParams, DepositParams
from provisioner.records import MANAGED_BY, api_key_secret, stark_secret
from provisioner.redact import Redactor
from provisioner.secrets import SecretResolver
from provisioner.signers.base import EthSigner

STATE = "state"
SECRET_FIELDS = frozenset({"private_key", "secret", "passphrase"})
KEY_ENV = "TEST_SIGNER_KEY"


class FakeVault:
    """KV v2 in memory: secrets with ownership metadata, and the tool's state (locks, journal)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.secrets: dict[str, tuple[dict[str, str], int, str | None, str | None]] = {}
        self.state: dict[str, tuple[dict[str, Any], int]] = {}
        self.fail_writes_to: set[str] = set()
        self.metadata: dict[str, dict[str, str]] = {}  # our custom_metadata keys, per path
        self.written: dict[str, float] = {}  # created_time of each path's current version

    def put_owned(self, path: str, data: Mapping[str, str], account: str) -> None:
        version = self.secrets.get(path, ({}, 0, None, None))[1] + 1
        self.secrets[path] = (dict(data), version, MANAGED_BY, account)
        self.written[path] = time.time()

    def read(self, path: str) -> SecretRecord:
        data, version, managed_by, account = self.secrets.get(path, ({}, 0, None, None))
        entry = VaultEntry(
            path=path,
            exists=bool(data),
            version=version,
            managed_by=managed_by,
            account=account,
            fields=frozenset(data),
            public=tuple(sorted((k, v) for k, v in data.items() if k not in SECRET_FIELDS)),
            written_at=self.written.get(path) if data else None,
            metadata=tuple(sorted(self.metadata.get(path, {}).items())),
        )
        return SecretRecord(entry=entry, data=MappingProxyType(dict(data)))

    def set_owned_metadata(self, path: str, metadata: Mapping[str, str], *, account: str) -> None:
        if path in self.fail_writes_to:
            raise VaultError(f"Vault: permission denied writing the metadata of {path}")
        _, _, managed_by, owner = self.secrets.get(path, ({}, 0, None, None))
        if managed_by != MANAGED_BY or owner != account:
            raise ForeignSecret(f"{path} is not ours")
        self.metadata.setdefault(path, {}).update(metadata)
        self.log.append(f"vault metadata {path}")

    def write_owned(
        self,
        path: str,
        data: Mapping[str, str],
        *,
        account: str,
        expected_version: int,
        current: SecretRecord | None = None,
    ) -> int:
        if path in self.fail_writes_to:
            raise VaultError(f"Vault: permission denied writing {path}")
        version = self.secrets.get(path, ({}, 0, None, None))[1]
        if version != expected_version:
            raise CasConflict(f"{path}: version {version}, expected {expected_version}")
        self.secrets[path] = (dict(data), version + 1, MANAGED_BY, account)
        self.written[path] = time.time()
        self.log.append(f"vault write {path}")
        return version + 1

    def read_state(self, path: str) -> tuple[dict[str, Any], int] | None:
        found = self.state.get(path)
        return (dict(found[0]), found[1]) if found is not None else None

    def write_state(self, path: str, data: Mapping[str, Any], cas: int) -> int:
        version = self.state.get(path, ({}, 0))[1]
        if version != cas:
            raise CasConflict(f"{path}: version {version}, expected {cas}")
        self.state[path] = (dict(data), version + 1)
        self.log.append(f"state write {path}")
        return version + 1

    def delete_state(self, path: str) -> None:
        self.state.pop(path, None)
        self.log.append(f"state delete {path}")

    def list_state(self, prefix: str) -> list[str]:
        names = set()
        for path in self.state:
            if path.startswith(prefix + "/"):
                head, slash, _ = path[len(prefix) + 1 :].partition("/")
                names.add(head + slash)
        return sorted(names)

    def data_path(self, path: str) -> str:
        return f"secret/data/{path}"

    def metadata_path(self, path: str) -> str:
        return f"secret/metadata/{path}"

    def missing_capabilities(self, paths_and_caps: Mapping[str, set[str]]) -> dict[str, set[str]]:
        return {}

    def journal(self, account: str) -> list[str]:
        return sorted(self.state_keys(f"{STATE}/journal/{account}/"))

    def state_keys(self, prefix: str) -> list[str]:
        return [p.removeprefix(prefix) for p in self.state if p.startswith(prefix)]


class FakeDydx:
    """One user per address, its API keys, and the default key every signer recovers."""

    def __init__(self, log: list[str], stark: StarkKeyPair, default: ApiCredentials) -> None:
        self.log = log
        self.stark = stark
        self.default = default
        self.users: dict[str, OnboardedAccount] = {}
        self.keys: dict[str, set[str]] = {}
        self.created = 0
        self.create_failures: list[DydxError] = []  # raised by the next create_api_key calls

    def add_user(self, address: str, position_id: int) -> OnboardedAccount:
        account = OnboardedAccount(
            account_id=f"acct-{position_id}",
            position_id=position_id,
            stark_key=self.stark.public_key,
        )
        self.users[address] = account
        self.keys[address] = {self.default.key}
        return account

    def user_exists(self, address: str) -> bool:
        return address in self.users

    def derive_stark_key(
        self, signer: EthSigner, *, check_deterministic: bool = True
    ) -> StarkKeyPair:
        return self.stark

    def recover_default_credentials(self, signer: EthSigner) -> ApiCredentials:
        return self.default

    def onboard(
        self, signer: EthSigner, stark: StarkKeyPair
    ) -> tuple[OnboardedAccount, ApiCredentials]:
        self.log.append(f"dydx onboard {signer.address}")
        return self.add_user(signer.address, 1), self.default

    def _known(self, address: str, creds: ApiCredentials) -> None:
        if creds.key not in self.keys.get(address, set()):
            raise DydxError("GET: 401 unauthorized", status=401)

    def get_account(self, address: str, creds: ApiCredentials) -> OnboardedAccount:
        self._known(address, creds)
        return self.users[address]

    def list_api_keys(self, address: str, creds: ApiCredentials) -> frozenset[str]:
        self._known(address, creds)
        return frozenset(self.keys[address])

    def registration_signature(self, address: str, creds: ApiCredentials) -> str:
        return "0x" + "11" * 65

    def create_api_key(self, signer: EthSigner) -> ApiCredentials:
        self.created += 1
        key = f"key-{self.created}"
        self.keys[signer.address].add(key)  # an ambiguous failure may still have created it
        self.log.append(f"dydx create {key}")
        if self.create_failures:
            raise self.create_failures.pop(0)
        return ApiCredentials(key=key, secret=f"canary-secret-{self.created}", passphrase="pp")

    def delete_api_key(self, signer: EthSigner, key: str, *, default_key: str) -> None:
        assert key != default_key, "the default key is never deleted"
        self.keys[signer.address].discard(key)
        self.log.append(f"dydx delete {key}")


class FakeNonces:
    def __init__(self) -> None:
        self.resyncs = 0

    def resync(self, address: str) -> None:
        self.resyncs += 1


@dataclass
class _Sent:
    intent: str
    sender: str
    nonce: int
    amount: int
    stark_key: int = 0
    position_id: int = 0


class FakeChain:
    """A node that mines whatever it is sent at once (or holds it when ``mine`` is False)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.credited: dict[tuple[int, int], int] = {}
        self.allowance: dict[str, int] = {}
        self.usdc_balance = 10**12  # every wallet's
        self.counts: dict[str, int] = {}
        self.pool: dict[str, bytes] = {}  # sent, not mined
        self.mined: dict[str, Receipt] = {}
        self.raw_sent: list[bytes] = []
        self.mine = True
        self.nonces = FakeNonces()
        self.taken_nonces: set[tuple[str, int]] = set()
        # STARK key -> L1 owner; None: every key asked about is registered to its address
        self.registered: dict[int, str] | None = None
        self._lock = threading.Lock()
        self._head = ChainHead(self.block_number, interval=0.01)

    def read_accounts(
        self, items: Sequence[tuple[str, int | None]], *, block: int | str = "latest"
    ) -> dict[str, ChainAccount]:
        return {
            address: ChainAccount(
                usdc_balance=self.usdc_balance,
                usdc_allowance=self.allowance.get(address, 0),
                eth_balance_wei=10**18,
                stark_key_owner=address
                if self.registered is None
                else self.registered.get(stark)
                if stark is not None
                else None,
            )
            for address, stark in items
        }

    def deposits(self, from_block: int = 0, *, refresh: bool = False) -> dict[tuple[int, int], int]:
        return dict(self.credited)

    def deposit_totals(
        self, from_block: int = 0, *, refresh: bool = False, confirmations: int | None = None
    ) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
        return dict(self.credited), {}  # every block is long confirmed (block_number)

    def block_number(self) -> int:
        return len(self.mined) + 10_000

    def head(self) -> int:
        return self.block_number()

    def head_after(self, block: int, timeout: float) -> int:
        return self._head.after(block, timeout)

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        return {"hash": tx_hash} if self.transaction_known(tx_hash) else None

    def transaction_count_at(self, address: str, block: int) -> int:
        return self.counts.get(address, 0)

    def _tx(self, sender: str, payload: _Sent, nonces: NonceCheck | None = None) -> dict[str, Any]:
        if nonces is not None:  # the node's counts, as the real build's batch asks them
            nonces(*self.transaction_counts(sender))
        data = (
            "0x"
            + rlp.encode(
                [payload.intent.encode(), payload.amount, payload.stark_key, payload.position_id]
            ).hex()
        )
        return {
            "from": sender,
            "to": "0x" + "22" * 20,
            "data": data,
            "value": 0,
            "nonce": self.counts.get(sender, 0),
            "gas": 100_000,
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            "chainId": SEPOLIA.chain_id,
        }

    def build_register(
        self,
        sender: str,
        eth_key: str,
        stark_key: int,
        signature_hex: str,
        *,
        nonces: NonceCheck | None = None,
    ) -> dict[str, Any]:
        return self._tx(sender, _Sent("register", sender, 0, 0, stark_key), nonces)

    def build_approve(
        self, owner: str, amount: int, *, nonces: NonceCheck | None = None
    ) -> dict[str, Any]:
        return self._tx(owner, _Sent("approve", owner, 0, amount), nonces)

    def build_deposit(
        self,
        owner: str,
        stark_key: int,
        position_id: int,
        amount: int,
        *,
        nonces: NonceCheck | None = None,
    ) -> dict[str, Any]:
        return self._tx(owner, _Sent("deposit", owner, 0, amount, stark_key, position_id), nonces)

    def hash_of_raw(self, raw: bytes) -> str:
        return "0x" + keccak(raw).hex()

    def send_raw(self, raw: bytes) -> str:
        try:
            fields = rlp.decode(raw[1:])  # EIP-1559: 0x02 || rlp([chainId, nonce, ...])
            nonce = int.from_bytes(fields[1], "big")
            sender = Account.recover_transaction(raw)
        except Exception as exc:  # noqa: BLE001 - what a node answers to bytes it cannot read
            raise ChainError(f"invalid raw transaction: {type(exc).__name__}") from None
        tx_hash = self.hash_of_raw(raw)
        with self._lock:
            if (sender, nonce) in self.taken_nonces and tx_hash not in self.mined:
                raise NonceTaken(tx_hash)
            self.raw_sent.append(raw)
            self.log.append(f"chain send {tx_hash[:10]}")
            self.pool[tx_hash] = raw
            if self.mine:
                self._mine(tx_hash)
        return tx_hash

    def _mine(self, tx_hash: str) -> None:
        raw = self.pool.pop(tx_hash)
        fields = rlp.decode(raw[1:])
        nonce = int.from_bytes(fields[1], "big")
        sender = Account.recover_transaction(raw)
        intent, amount, stark_key, position_id = rlp.decode(fields[7])
        amount = int.from_bytes(amount, "big")
        if intent == b"deposit":
            key = (int.from_bytes(stark_key, "big"), int.from_bytes(position_id, "big"))
            self.credited[key] = self.credited.get(key, 0) + amount
        elif intent == b"approve":
            self.allowance[sender] = amount
        self.counts[sender] = max(self.counts.get(sender, 0), nonce + 1)
        self.taken_nonces.add((sender, nonce))
        self.mined[tx_hash] = Receipt(tx_hash=tx_hash, status=1, block_number=len(self.mined) + 1)

    def mine_pool(self) -> None:
        with self._lock:
            for tx_hash in list(self.pool):
                self._mine(tx_hash)

    def forget_pool(self) -> None:
        """The node restarts and loses its pool: what was sent and not mined is dropped."""
        self.pool.clear()

    def wait_for_receipt(
        self, tx_hash: str, timeout_seconds: float, *, poll_seconds: float = 0.0
    ) -> Receipt:
        if tx_hash in self.pool:
            self.mine_pool()
        if tx_hash not in self.mined:
            raise ChainError(f"no receipt for transaction {tx_hash}")
        return self.mined[tx_hash]

    def receipt(self, tx_hash: str) -> Receipt | None:
        """Like wait_for_receipt: what the node holds is mined once someone looks for it."""
        if tx_hash in self.pool:
            self.mine_pool()
        return self.mined.get(tx_hash)

    def receipts(self, tx_hashes: Sequence[str]) -> dict[str, Receipt | None]:
        return {h: self.receipt(h) for h in tx_hashes}

    def transaction_known(self, tx_hash: str) -> bool:
        return tx_hash in self.pool or tx_hash in self.mined

    def transaction_counts(self, address: str) -> tuple[int, int]:
        latest = self.counts.get(address, 0)
        return latest, latest


@dataclass
class FakeConnections:
    """What ``execute`` is given: satisfies apply.ports.ApplyConnections."""

    manifest: Manifest
    redactor: Redactor
    resolver: SecretResolver
    vault: FakeVault
    dydx: FakeDydx
    chain: FakeChain
    log: Callable[[str], None]
    lines: list[str] = field(default_factory=list)
    transport: FakeTransport = field(default_factory=FakeTransport)
    untrusted: bool = False  # a trusted run: observe reads secrets as apply does


@dataclass
class World:
    conn: FakeConnections
    spec: AccountSpec
    events: list[str]  # vault, dydx and chain writes, in order
    private_key: str = field(repr=False, default="")

    @property
    def vault(self) -> FakeVault:
        return self.conn.vault

    @property
    def dydx(self) -> FakeDydx:
        return self.conn.dydx

    @property
    def chain(self) -> FakeChain:
        return self.conn.chain


def world(*, deposit: str = "5", api_keys: tuple[str, ...] = ("default",)) -> World:
    """One onboarded, registered account whose STARK key and default API key are in Vault."""
    acct = Account.create()
    key_hex = "0x" + bytes(acct.key).hex()
    redactor = Redactor()
    name = "mm-unit"
    spec = AccountSpec(
        name=name,
        address=acct.address,
        signer=PrivateKeySigner(key=SecretRef("env", KEY_ENV)),
        deposit=Decimal(deposit),
        stark_key_path=f"dydx/{name}/stark",
        api_keys=tuple(ApiKeySpec(k, f"dydx/{name}/api/{k}") for k in api_keys),
    )
    network = NetworkSpec(
        name="sepolia",
        chain_id=SEPOLIA.chain_id,
        api_url="http://127.0.0.1:1",
        rpc_url="http://127.0.0.1:1",
        exchange_contract=SEPOLIA.exchange_contract,
        usdc_contract=SEPOLIA.usdc_contract,
        collateral_asset_id=SEPOLIA.collateral_asset_id,
    )
    manifest = Manifest(
        path="unit.yaml",
        version=1,
        network=network,
        vault=VaultSpec(address="http://127.0.0.1:1", auth=VaultAuth("token"), state_path=STATE),
        accounts=(spec,),
    )
    events: list[str] = []
    stark = StarkKeyPair.from_private_key(0x1234567)
    default = ApiCredentials(key="key-default", secret="canary-default-secret", passphrase="pp")
    vault, dydx, chain = FakeVault(events), FakeDydx(events, stark, default), FakeChain(events)
    account = dydx.add_user(acct.address, position_id=7)
    vault.put_owned(
        spec.stark_key_path, stark_secret(stark, acct.address, "sepolia", account), name
    )
    vault.put_owned(
        f"dydx/{name}/api/default", api_key_secret(default, acct.address, "sepolia"), name
    )
    lines: list[str] = []
    conn = FakeConnections(
        manifest=manifest,
        redactor=redactor,
        resolver=SecretResolver(redactor, {KEY_ENV: key_hex}),
        vault=vault,
        dydx=dydx,
        chain=chain,
        log=lines.append,
        lines=lines,
    )
    return World(conn, spec, events, key_hex)


def top_up_plan(world: World, planned: int, target: int, *, approve: int | None = None) -> Plan:
    """An approve then a deposit (which depends on it) for ``world``'s account, as the planner
    makes them: ``planned`` deposited toward ``target``; ``approve``: the allowance asked, else
    ``planned``. The summaries are the plan's words, never the outcome's."""
    name = world.spec.name
    steps = (
        (
            StepKind.APPROVE,
            ApproveParams(amount_base_units=approve or planned, target_base_units=target),
            (),
        ),
        (
            StepKind.DEPOSIT,
            DepositParams(amount_base_units=planned, target_base_units=target),
            (f"{name}/approve",),
        ),
    )
    made = tuple(
        Step(
            id=f"{name}/{kind.value}",
            account=name,
            kind=kind,
            action=Action.CREATE,
            summary=f"the plan's words for {kind.value}",
            reason="test",
            params=params,
            depends_on=depends,
        )
        for kind, params, depends in steps
    )
    account = AccountPlan(name=name, address=world.spec.address, steps=made)
    chain_id = world.conn.manifest.network.chain_id
    return Plan("unit.yaml", "sepolia", chain_id, "sha256:t", (account,))
