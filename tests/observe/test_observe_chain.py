"""The chain's reads go out in batches while the off-chain reads are still being made."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from provisioner.clients.chain import ChainAccount
from provisioner.clients.vault import SecretRecord
from provisioner.facts import VaultEntry
from provisioner.manifest.model import AccountSpec
from provisioner.observe_chain import CHAIN_CHUNK, Partial, gather, with_chain_facts


def _spec(i: int) -> AccountSpec:
    return AccountSpec(
        name=f"mm-{i:04d}",
        address=f"0x{i + 1:040x}",
        signer=None,
        deposit=Decimal(0),
        stark_key_path=f"dydx/mm-{i:04d}/stark",
    )


def _partial(spec: AccountSpec, stark_public: int | None) -> Partial:
    return Partial(
        spec,
        SecretRecord(entry=VaultEntry(spec.stark_key_path, exists=False), data={}),
        {},
        True,
        frozenset(),
        None,
        stark_public,
        (),
        (),
    )


@dataclass
class _Chain:
    first_read: threading.Event = field(default_factory=threading.Event)
    asked: list[list[tuple[str, int | None]]] = field(default_factory=list)
    scanned: threading.Event = field(default_factory=threading.Event)

    def read_accounts(self, items: Any, **_: Any) -> dict[str, ChainAccount]:
        self.asked.append(list(items))
        self.first_read.set()
        return {a: ChainAccount(1, 2, 3, None) for a, _key in items}

    def deposit_totals(self, **_: Any) -> tuple[dict[Any, int], dict[Any, int]]:
        self.scanned.set()
        return {}, {}


@dataclass
class _Network:
    confirmations: int = 2


@dataclass
class _Manifest:
    network: _Network = field(default_factory=_Network)


@dataclass
class _Conn:
    chain: _Chain
    manifest: _Manifest = field(default_factory=_Manifest)


def test_the_deposit_events_are_scanned_while_the_accounts_are_read() -> None:
    """The scan (two JSON-RPC round trips or more) is not one more wait after the last
    account's reads: an account's reads here go on only once it has started."""
    chain = _Chain()
    accounts = [_spec(i) for i in range(3)]
    waited: list[bool] = []

    def offchain(spec: AccountSpec) -> Partial:
        waited.append(chain.scanned.wait(timeout=5))
        return _partial(spec, None)

    gather(_Conn(chain), offchain, accounts, parallelism=2)  # type: ignore[arg-type]
    assert waited == [True, True, True]


def test_chain_reads_start_before_the_last_off_chain_read_ends() -> None:
    """An account past the first chunk waits until the chain has been asked about the first:
    reading the chain only after every off-chain read would never let it through."""
    chain = _Chain()
    accounts = [_spec(i) for i in range(CHAIN_CHUNK * 2 + 7)]
    waited: list[bool] = []

    def offchain(spec: AccountSpec) -> Partial:
        if spec is accounts[-1]:
            waited.append(chain.first_read.wait(timeout=30))
        return _partial(spec, int(spec.name[3:]) or None)

    partials, state = gather(_Conn(chain), offchain, accounts, parallelism=8)  # type: ignore[arg-type]
    assert waited == [True]
    assert [p.spec for p in partials] == accounts
    assert [len(batch) for batch in chain.asked] == [CHAIN_CHUNK, CHAIN_CHUNK, 7]
    assert set(state) == {a.address for a in accounts}
    # each account is asked about with the STARK key its off-chain reads found
    asked = dict(item for batch in chain.asked for item in batch)
    assert asked[accounts[0].address] is None and asked[accounts[5].address] == 5


def test_a_fleet_smaller_than_a_chunk_is_one_read() -> None:
    chain = _Chain()
    accounts = [_spec(i) for i in range(3)]
    gather(_Conn(chain), lambda s: _partial(s, None), accounts, parallelism=2)  # type: ignore[arg-type]
    assert [len(batch) for batch in chain.asked] == [3]
    assert gather(_Conn(_Chain()), lambda s: _partial(s, None), [], parallelism=2) == ([], {})  # type: ignore[arg-type]


@dataclass
class _CachingChain(_Chain):
    """The chain client's deposit scan as it caches it: kept once made, made again (its new
    blocks read) only when ``refresh`` asks for it."""

    mined: dict[Any, int] = field(default_factory=dict)
    kept: dict[Any, int] | None = None

    def deposit_totals(  # type: ignore[override]
        self, *, refresh: bool = False, **_: Any
    ) -> tuple[dict[Any, int], dict[Any, int]]:
        if self.kept is None or refresh:
            self.kept = dict(self.mined)
        return dict(self.kept), {}


def test_the_look_under_the_locks_sees_the_deposits_mined_since_the_first_look() -> None:
    """Between apply's two looks another run may deposit for an account, see it confirmed and
    forget its journal entry, then release the account. The look under the locks reads the
    journal again (the entry is gone): it must scan the events after that, not show the
    first look's scan, in which the deposit is missing too (a deposit planned twice)."""
    chain = _CachingChain()
    spec = _spec(1)

    def offchain(s: AccountSpec) -> Partial:
        p = _partial(s, 5)
        p.position_id = 7
        return p

    def deposited() -> int:
        partials, state = gather(_Conn(chain), offchain, [spec], parallelism=1)  # type: ignore[arg-type]
        (facts,) = with_chain_facts(_Conn(chain), partials, state, 0.0)  # type: ignore[arg-type]
        return facts.deposited

    assert deposited() == 0
    chain.mined[(5, 7)] = 100
    assert deposited() == 100


@dataclass
class _SlowScanChain(_Chain):
    release: threading.Event = field(default_factory=threading.Event)

    def deposit_totals(self, **_: Any) -> tuple[dict[Any, int], dict[Any, int]]:
        self.scanned.set()
        self.release.wait(timeout=10)
        return {}, {}


def test_a_look_that_fails_does_not_wait_for_the_deposit_scan() -> None:
    """A read that fails, or a signal before the first step (``Drain`` raises Interrupted in
    the main thread), ends the look where it is: the scan going on beside it (many
    eth_getLogs batches on a first scan) is not waited for, as it was not when it ran last."""
    chain = _SlowScanChain()
    threading.Timer(3, chain.release.set).start()

    def offchain(spec: AccountSpec) -> Partial:
        chain.scanned.wait(timeout=5)
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        gather(_Conn(chain), offchain, [_spec(0)], parallelism=1)  # type: ignore[arg-type]
    assert time.monotonic() - started < 2
    chain.release.set()
