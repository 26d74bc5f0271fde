"""observe only looks: whose signer to check is decided by its caller, from the facts."""

from __future__ import annotations

from support.apply_fakes import world

from provisioner.facts import AccountFacts
from provisioner.manifest.model import AccountSpec
from provisioner.observe import observe
from provisioner.secrets import SecretResolver


def test_no_signer_is_resolved_unless_the_caller_asks() -> None:
    w = world()
    w.conn.resolver = SecretResolver(w.conn.redactor, {})  # the signer's key is not there
    facts = observe(w.conn, [w.spec])  # type: ignore[arg-type]
    assert facts.account(w.spec.name).signer_error is None


def test_the_callers_decision_sees_the_facts_and_is_applied() -> None:
    w = world()
    w.conn.resolver = SecretResolver(w.conn.redactor, {})
    asked: list[tuple[str, int]] = []

    def check(spec: AccountSpec, facts: AccountFacts) -> bool:
        asked.append((spec.name, facts.deposited))
        return True

    w.chain.credited[(w.dydx.stark.public_key, 7)] = 3
    facts = observe(w.conn, [w.spec], check_signer=check)  # type: ignore[arg-type]
    assert asked == [(w.spec.name, 3)]
    assert "TEST_SIGNER_KEY" in (facts.account(w.spec.name).signer_error or "")


def test_a_usable_signer_checked_changes_no_fact() -> None:
    w = world()
    plain = observe(w.conn, [w.spec])  # type: ignore[arg-type]
    checked = observe(w.conn, [w.spec], check_signer=lambda _s, _f: True)  # type: ignore[arg-type]
    assert checked == plain  # the key resolves: no error, nothing else differs
