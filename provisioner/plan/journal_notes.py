"""The plan's notes on what an interrupted run left in the journal: API key creations (and
the orphaned keys apply settles before any step), and transactions not final yet (which
count as pending changes). Pure, like the planner that calls them (plan/planner.py)."""

from __future__ import annotations

from provisioner.facts import AccountFacts
from provisioner.money import format_usdc, from_base_units
from provisioner.plan.model import Note


def interrupted_key_creations(facts: AccountFacts, notes: list[Note]) -> frozenset[str]:
    """Notes for API key creations a killed run left in the journal; the orphaned key ids.

    apply settles them before any step: an orphan (listed at dYdX, its secret never
    stored) is deleted there, then the key's own step creates a fresh one.
    """
    orphans: set[str] = set()
    for intent in facts.api_key_intents:
        if intent.unexpected:
            orphans.update(intent.unexpected)  # reported here, not again as keys to prune
            notes.append(
                Note(
                    "warning",
                    f"API key(s) {', '.join(intent.unexpected)} appeared at dYdX while an interrupted apply was "
                    f"creating {intent.name}, and the journal does not say this tool created them: "
                    "left alone (if one is an unstored key of ours, delete it at dYdX yourself)",
                )
            )
        if intent.orphans is None:
            notes.append(
                Note(
                    "warning",
                    f"an interrupted apply may have created API key {intent.name} at dYdX without storing it; "
                    "apply compares dYdX's keys with Vault first and deletes a key whose secret was lost",
                )
            )
        elif intent.orphans:
            orphans.update(intent.orphans)
            notes.append(
                Note(
                    "warning",
                    f"an interrupted apply created API key {intent.name} at dYdX ({', '.join(intent.orphans)}) "
                    "and never stored its secret in Vault: apply deletes it there (never the default key) "
                    "before creating the key again",
                )
            )
        else:
            notes.append(
                Note(
                    "info",
                    f"an interrupted apply left a journal entry for API key {intent.name}; "
                    "no key was lost, apply clears the entry",
                )
            )
    return frozenset(orphans)


_THEN: dict[str, tuple[bool, str]] = {  # status -> (final, what apply does about it)
    "confirmed": (True, "confirmed: apply clears the entry"),
    "superseded": (
        True,
        "superseded (its nonce went to another transaction): apply clears the entry",
    ),
    "failed": (True, "reverted: apply clears the entry and the step runs again if still needed"),
    "mined": (False, "mined, waiting for confirmations: apply waits for them"),
    "pending": (False, "pending at the node: apply waits for its receipt and confirmations"),
    "dropped": (
        False,
        "unknown to the node: apply broadcasts the same signed transaction again",
    ),
    "awaiting": (
        False,
        "awaiting the remote signer: nothing new is sent for this address until its nonce is used or a person resolves it (provision journal resolve)",
    ),
}


def journaled_transactions(facts: AccountFacts, account: str) -> list[Note]:
    """Notes for journaled transactions; those not final yet are pending (a change)."""
    notes = []
    for entry in facts.journal:
        final, then = _THEN.get(entry.status, (False, f"status {entry.status}"))
        if entry.problem:
            final, then = (
                False,
                f"held for a person: {entry.problem} (provision journal resolve)",
            )
        who = (
            f" (journaled as {entry.journaled_by})"
            if entry.journaled_by not in ("", account)
            else ""
        )
        notes.append(
            Note(
                "info" if final else "pending",
                f"journaled {entry.intent} {entry.tx_hash or 'without a hash yet'} (nonce {entry.nonce}){who} is {then}",
            )
        )
    if facts.unconfirmed_deposits:
        notes.append(
            Note(
                "pending",
                f"{format_usdc(from_base_units(facts.unconfirmed_deposits))} USDC deposited in blocks "
                "without enough confirmations yet: counted toward the target, not done until confirmed",
            )
        )
    return notes
