"""The plan's fingerprint: a digest of the facts' JSON text, made without holding that text."""

from __future__ import annotations

import hashlib
import json

from provisioner.facts import (
    MANAGED_BY,
    AccountFacts,
    ApiKeyIntentFact,
    JournalEntry,
    VaultEntry,
    WorldFacts,
)
from provisioner.plan.fingerprint import _encode, fingerprint


def _account(i: int) -> AccountFacts:
    return AccountFacts(
        name=f"mm-{i:02d}",
        address=f"0x{i:040x}",
        stark_secret=VaultEntry(
            f"dydx/mm-{i:02d}/stark",
            exists=True,
            version=i + 1,
            managed_by=MANAGED_BY,
            account=f"mm-{i:02d}",
            fields=frozenset({"private_key", "public_key", "position_id"}),
            public=(("position_id", str(i)), ("public_key", f"0x{i:x}")),
        ),
        dydx_api_keys=frozenset({f"key-{i}-b", f"key-{i}-a"}),
        usdc_balance=10**6 * i,
        journal=(JournalEntry("deposit", f"0x{i:064x}", nonce=i, amount=5),),
        api_key_intents=(ApiKeyIntentFact("hedger", None, ("x", "y")),),
        observed_at=1_700_000_000.0 + i,
    )


def _one_shot(facts: WorldFacts) -> str:
    """What the fingerprint was before it was streamed: one json.dumps of everything."""
    text = json.dumps(facts, sort_keys=True, default=_encode)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_the_streamed_fingerprint_is_the_digest_of_the_whole_json_text() -> None:
    """Saved plans keep their fingerprints: streaming changes the memory, not the digest."""
    for facts in (
        WorldFacts(chain_id=11155111),
        WorldFacts(chain_id=None, accounts=(_account(1),)),
        WorldFacts(
            chain_id=1,
            accounts=tuple(_account(i) for i in range(5)),
            errors=("dYdX: 503",),
            not_checked=("the contents of a", "b"),
        ),
    ):
        assert fingerprint(facts) == _one_shot(facts)


def test_the_fingerprint_leaves_out_when_the_facts_were_read() -> None:
    a = WorldFacts(chain_id=1, accounts=(_account(1),))
    later = WorldFacts(
        chain_id=1, accounts=(AccountFacts(**{**vars(_account(1)), "observed_at": 5.0}),)
    )
    assert fingerprint(a) == fingerprint(later)
    assert fingerprint(a) != fingerprint(WorldFacts(chain_id=2, accounts=(_account(1),)))
