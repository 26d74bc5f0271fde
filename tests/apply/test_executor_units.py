"""The executor and its steps against in-memory Vault, dYdX and chain: no sandbox, fast.

What is checked is the order of side effects the crash-safety promises rest on: the
journal entry before the broadcast or the POST, the secret in Vault before the entry is
dropped, a fresh look before paying, and an interrupted run's leftovers settled first.
"""

from __future__ import annotations

import pytest
from support.apply_fakes import STATE, World, world

from provisioner.apply import steps
from provisioner.apply.events import Event, StepDone, StepFailed, StepStarted
from provisioner.apply.executor import execute
from provisioner.clients.dydx import DydxError
from provisioner.clients.retry import RetryPolicy
from provisioner.journal import Journal, KeyIntent, StoredTx
from provisioner.networks import SEPOLIA
from provisioner.plan.model import AccountPlan, Action, Plan, Step, StepKind
from provisioner.plan.params import ApiKeyParams, DepositParams, StepParams
from provisioner.signers.local import LocalKeySigner

USDC = 10**6


def plan_of(w: World, *steps_: tuple[StepKind, Action, StepParams, str]) -> Plan:
    made = tuple(
        Step(
            id=f"{w.spec.name}/{kind.value}" + (f"/{suffix}" if suffix else ""),
            account=w.spec.name,
            kind=kind,
            action=action,
            summary=f"{kind.value} {suffix}".strip(),
            reason="test",
            params=params,
        )
        for kind, action, params, suffix in steps_
    )
    account = AccountPlan(name=w.spec.name, address=w.spec.address, steps=made)
    return Plan(
        manifest="unit.yaml",
        network="sepolia",
        chain_id=w.conn.manifest.network.chain_id,
        fingerprint="sha256:test",
        accounts=(account,),
    )


def deposit_plan(w: World, amount: int, target: int) -> Plan:
    params = DepositParams(amount_base_units=amount, target_base_units=target)
    return plan_of(w, (StepKind.DEPOSIT, Action.CREATE, params, ""))


def position_key(w: World) -> tuple[int, int]:
    return (w.dydx.stark.public_key, 7)


def journal_path(w: World, key: str) -> str:
    return f"{STATE}/journal/{w.spec.name}/{key}"


def sender_path(w: World, key: str) -> str:
    """Where a transaction is journaled: by chain and sender address, not account name."""
    return f"{STATE}/journal/_senders/{SEPOLIA.chain_id}/{w.spec.address.lower()}/{key}"


def journal_left(w: World) -> list[str]:
    return w.vault.state_keys(f"{STATE}/journal/")


def test_a_deposit_is_journaled_before_broadcast_and_forgotten_once_mined() -> None:
    w = world()
    seen: list[Event] = []
    (result,) = execute(w.conn, deposit_plan(w, 5 * USDC, 5 * USDC), report=seen.append)
    assert result.failed is None, result.error
    assert result.done == ("mm-unit/deposit",)
    assert w.chain.credited == {position_key(w): 5 * USDC}
    entry = sender_path(w, "deposit-0")
    assert [e for e in w.events if not e.startswith("vault")] == [
        f"state write {entry}",
        f"chain send {result.tx_hashes[0][:10]}",
        f"state delete {entry}",
    ]
    assert journal_left(w) == []
    assert [type(e) for e in seen] == [StepStarted, StepDone]


def test_a_deposit_is_recomputed_from_fresh_chain_events_never_paid_twice() -> None:
    w = world()
    w.chain.credited[position_key(w)] = 2 * USDC  # landed after the plan was made
    (result,) = execute(w.conn, deposit_plan(w, 5 * USDC, 5 * USDC))
    assert result.failed is None, result.error
    assert w.chain.credited == {position_key(w): 5 * USDC}
    assert len(w.chain.raw_sent) == 1
    assert any(
        "recomputed from fresh facts: 3 USDC (planned 5 USDC)" in line for line in w.conn.lines
    )


def test_a_deposit_already_covered_sends_nothing() -> None:
    w = world()
    w.chain.credited[position_key(w)] = 5 * USDC
    (result,) = execute(w.conn, deposit_plan(w, 5 * USDC, 5 * USDC))
    # it ran, and is not counted as done: it found nothing to pay
    assert result.failed is None and result.done == ()
    assert result.unchanged == ("mm-unit/deposit",)
    assert w.chain.raw_sent == [] and journal_left(w) == []


def test_a_journaled_deposit_still_in_the_pool_is_waited_for_not_paid_again() -> None:
    """A run died after broadcasting; the deposit is still in the node's pool. The next run waits
    for it before any step, and the deposit step then finds the target met."""
    w = world()
    signer = LocalKeySigner(w.private_key)
    w.chain.mine = False
    tx = w.chain.build_deposit(w.spec.address, w.dydx.stark.public_key, 7, 5 * USDC)
    raw = signer.sign_transaction(tx)
    w.chain.send_raw(raw)
    journal = Journal(w.vault, STATE)
    journal.record(
        StoredTx(w.spec.name, "deposit", 0, w.chain.hash_of_raw(raw), "0x" + raw.hex(), 5 * USDC)
    )
    run = execute(w.conn, deposit_plan(w, 5 * USDC, 5 * USDC))
    # The account was journaled, so the entry is settled first: waited for, then forgotten.
    assert run[0].failed is None, run[0].error
    assert w.chain.credited == {position_key(w): 5 * USDC}
    assert w.chain.raw_sent == [raw]
    assert journal_left(w) == []


def api_key_plan(w: World, name: str) -> Plan:
    params = ApiKeyParams(path=f"dydx/{w.spec.name}/api/{name}", name=name, version=0)
    return plan_of(w, (StepKind.API_KEY, Action.CREATE, params, name))


def test_a_named_api_key_is_journaled_created_then_stored_then_the_intent_dropped() -> None:
    w = world(api_keys=("default", "hedger"))
    (result,) = execute(w.conn, api_key_plan(w, "hedger"))
    assert result.failed is None, result.error
    stored = w.vault.read(f"dydx/{w.spec.name}/api/hedger")
    assert stored.entry.is_ours(w.spec.name) and stored.data["key"] == "key-1"
    assert w.dydx.keys[w.spec.address] == {"key-default", "key-1"}
    intent = journal_path(w, "api_key-hedger")
    order = [e for e in w.events if e.split()[-1] in (intent, "key-1") or "api/hedger" in e]
    assert order == [
        f"state write {intent}",  # the intent, before POST /v3/api-keys
        "dydx create key-1",
        f"state write {intent}",  # the new key's id noted
        f"vault write dydx/{w.spec.name}/api/hedger",
        f"state delete {intent}",
    ]


def test_an_api_key_whose_secret_cannot_be_stored_is_deleted_at_dydx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        steps, "WRITE_RETRY", RetryPolicy(max_attempts=2, base_delay=0, max_delay=0)
    )
    w = world(api_keys=("default", "hedger"))
    w.vault.fail_writes_to.add(f"dydx/{w.spec.name}/api/hedger")
    seen: list[Event] = []
    (result,) = execute(w.conn, api_key_plan(w, "hedger"), report=seen.append)
    assert result.failed == "mm-unit/api_key/hedger"
    assert "was deleted at dYdX, so no key is left without its secret" in (result.error or "")
    assert "canary" not in (result.error or "")
    assert w.dydx.keys[w.spec.address] == {"key-default"}
    assert journal_left(w) == []
    assert isinstance(seen[-1], StepFailed) and seen[-1].step is not None


def test_an_ambiguous_create_leaves_what_it_may_have_made_and_tries_again() -> None:
    """The key the unanswered attempt made has no recorded id: it cannot be told from one the
    desk made meanwhile, so it is reported and left at dYdX, never deleted."""
    w = world(api_keys=("default", "hedger"))
    w.dydx.create_failures.append(
        DydxError("POST /v3/api-keys: timed out", route="POST /v3/api-keys", ambiguous=True)
    )
    (result,) = execute(w.conn, api_key_plan(w, "hedger"))
    assert result.failed is None, result.error
    assert not [e for e in w.events if e.startswith("dydx delete")]
    assert any("key-1" in line and "left alone" in line for line in w.conn.lines)
    assert w.dydx.keys[w.spec.address] == {"key-default", "key-1", "key-2"}
    assert w.vault.read(f"dydx/{w.spec.name}/api/hedger").data["key"] == "key-2"


def test_settling_rebroadcasts_a_dropped_deposit_with_the_same_bytes() -> None:
    """A run died after journaling a signed deposit; the node forgot it. The next run sends the
    very same bytes (same nonce: it can never pay twice), and the deposit step then sees it."""
    w = world()
    signer = LocalKeySigner(w.private_key)
    tx = w.chain.build_deposit(w.spec.address, w.dydx.stark.public_key, 7, 5 * USDC)
    raw = signer.sign_transaction(tx)
    Journal(w.vault, STATE).record(
        StoredTx(w.spec.name, "deposit", 0, w.chain.hash_of_raw(raw), "0x" + raw.hex(), 5 * USDC)
    )
    (result,) = execute(w.conn, deposit_plan(w, 5 * USDC, 5 * USDC))
    assert result.failed is None, result.error
    assert w.chain.raw_sent == [raw]
    assert w.chain.credited == {position_key(w): 5 * USDC}
    assert journal_left(w) == []


@pytest.mark.parametrize("recorded", [True, False], ids=["id recorded", "id unknown"])
def test_settling_deletes_only_the_orphan_whose_id_was_recorded(recorded: bool) -> None:
    """A run died between POST /v3/api-keys and storing the secret: the key dYdX has that
    Vault lacks is deleted there if the intent recorded its id (never the default key);
    without the id it may be the desk's own, and is left. The intent is cleared either way."""
    w = world(api_keys=("default", "hedger"))
    w.dydx.keys[w.spec.address].add("key-orphan")
    Journal(w.vault, STATE).record_key_intent(
        KeyIntent(
            account=w.spec.name,
            name="hedger",
            path=f"dydx/{w.spec.name}/api/hedger",
            listed_before=frozenset({"key-default"}),
            created="key-orphan" if recorded else None,
        )
    )
    (result,) = execute(w.conn, plan_of(w))
    assert result.failed is None, result.error
    left = {"key-default"} | (set() if recorded else {"key-orphan"})
    assert w.dydx.keys[w.spec.address] == left
    assert journal_left(w) == []


def test_a_journal_that_cannot_be_settled_stops_its_account_before_any_step() -> None:
    w = world()
    Journal(w.vault, STATE).record(
        StoredTx(w.spec.name, "deposit", 0, "0x" + "ab" * 32, "0x02c0", 5 * USDC)
    )
    seen: list[Event] = []
    (result,) = execute(w.conn, deposit_plan(w, 5 * USDC, 5 * USDC), report=seen.append)
    assert result.failed == "journal" and result.done == ()
    assert w.chain.credited == {}
    assert journal_left(w) == [f"{w.spec.name}/deposit-0"]  # kept for the next run
    assert isinstance(seen[0], StepFailed) and seen[0].step is None
