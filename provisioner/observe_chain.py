"""Observe's two halves joined: what each account's Vault and dYdX reads gave (``Partial``),
and the chain's answers about it, read in JSON-RPC batches while the off-chain reads go on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from provisioner.clients.chain import ChainAccount
from provisioner.clients.vault import SecretRecord
from provisioner.connections import Connections
from provisioner.facts import AccountFacts, ApiKeyIntentFact, DerivedStarkKey, JournalEntry
from provisioner.manifest.model import AccountSpec
from provisioner.money import in_flight


@dataclass
class Partial:
    """What one account's Vault and dYdX reads gave, before the batched chain reads."""

    spec: AccountSpec
    stark: SecretRecord
    api: dict[str, SecretRecord]
    user_exists: bool | None
    dydx_keys: frozenset[str] | None
    position_id: int | None
    stark_public: int | None
    journal: tuple[JournalEntry, ...]
    key_intents: tuple[ApiKeyIntentFact, ...]
    derived: DerivedStarkKey | None = None
    stark_unknown: bool = False
    signer_error: str | None = None
    signer_made: bool = False  # resolved while deriving: no need to check it again
    default_key_id: str | None = None  # recovered while deriving (to read the position)


CHAIN_CHUNK = 125  # accounts whose chain reads (4 calls at most) fill one JSON-RPC batch


def gather(
    conn: Connections,
    offchain: Callable[[AccountSpec], Partial],
    accounts: Sequence[AccountSpec],
    parallelism: int,
) -> tuple[list[Partial], dict[str, ChainAccount]]:
    """Every account's off-chain reads on a pool; meanwhile, this thread sends the chain reads
    of each ``CHAIN_CHUNK`` accounts as soon as their STARK keys are known, instead of all of
    them after the last: the node answers while Vault and dYdX still do. The deposit events
    (``with_chain_facts``) are scanned meanwhile too, once the caller has read the journal:
    a scan started now (``refresh``), not one kept from an earlier look (apply's first, for
    the look under the locks), which would miss a deposit mined and forgotten since. A look
    that fails (a read's error, a signal before the first step) does not wait for the scan."""
    partials: list[Partial] = []
    chain_state: dict[str, ChainAccount] = {}

    def read(chunk: list[Partial]) -> None:
        if chunk:
            chain_state.update(
                conn.chain.read_accounts([(p.spec.address, chain_key(p)) for p in chunk])
            )

    scan = _Beside(
        lambda: conn.chain.deposit_totals(
            refresh=True, confirmations=conn.manifest.network.confirmations
        )
    )
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        for partial in pool.map(offchain, accounts):
            partials.append(partial)
            if len(partials) % CHAIN_CHUNK == 0:
                read(partials[-CHAIN_CHUNK:])
    read(partials[len(partials) - len(partials) % CHAIN_CHUNK :])
    scan.result()  # kept by the client for ``with_chain_facts``; its error, if any, here
    return partials, chain_state


class _Beside:
    """One call on a daemon thread of its own, its result (or error) taken with ``result``.
    Not a pool: leaving a pool's block, and the interpreter's exit, wait for its thread."""

    def __init__(self, call: Callable[[], object]) -> None:
        self._call = call
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="deposit-scan", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._call()
        except BaseException as exc:  # handed to ``result``, in the caller's thread
            self._error = exc

    def result(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def with_chain_facts(
    conn: Connections,
    partials: list[Partial],
    chain_state: dict[str, ChainAccount],
    observed_at: float,
) -> list[AccountFacts]:
    """What the chain said of every account, joined to what Vault and dYdX said;
    ``observed_at``: when the off-chain reads were made."""
    # A deposit counts as done only with `confirmations` blocks on top; younger ones count
    # toward the target (no second deposit) but leave the account pending.
    deposits, unconfirmed = conn.chain.deposit_totals(
        confirmations=conn.manifest.network.confirmations
    )
    facts = []
    for p in partials:
        c = chain_state[p.spec.address]
        stark_public, position_id = chain_key(p), position(p)
        done = waiting = 0
        if stark_public is not None and position_id is not None:
            done = deposits.get((stark_public, position_id), 0)
            waiting = unconfirmed.get((stark_public, position_id), 0)
        facts.append(
            AccountFacts(
                name=p.spec.name,
                address=p.spec.address,
                stark_secret=p.stark.entry,
                api_secrets=tuple((name, rec.entry) for name, rec in p.api.items()),
                user_exists=p.user_exists,
                dydx_api_keys=p.dydx_keys,
                stark_key_owner=c.stark_key_owner,
                usdc_balance=c.usdc_balance,
                usdc_allowance=c.usdc_allowance,
                eth_balance_wei=c.eth_balance_wei,
                deposited=done,
                unconfirmed_deposits=waiting,
                pending_deposits=in_flight((j.intent, j.amount, j.status) for j in p.journal),
                journal=p.journal,
                api_key_intents=p.key_intents,
                signer_error=p.signer_error,
                derived_stark_key=p.derived,
                stark_key_unknown=p.stark_unknown,
                observed_at=observed_at,
            )
        )
    return facts


def chain_key(p: Partial) -> int | None:
    """The STARK key the chain is asked about: Vault's, else the one derived in memory."""
    if p.stark_public is not None:
        return p.stark_public
    return int(p.derived.public_key, 16) if p.derived is not None else None


def position(p: Partial) -> int | None:
    if p.stark_public is None and p.derived is not None:
        return p.derived.position_id
    return p.position_id


def int_or_none(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value), 0)
    except ValueError:
        return None
