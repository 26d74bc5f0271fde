"""An account onboarded elsewhere (no STARK key in Vault): observe derives the key in memory.

The planner then sees the registration and the deposits that exist (issue 17). Local signers
derive by default, remote ones only with ``Derive.ALL`` (``plan --derive``), an untrusted or
``Derive.OFF`` look never; a signer whose two signatures differ is refused (DESIGN §8).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from support.apply_fakes import FakeDydx, World, world

from provisioner import derivation
from provisioner.clients.dydx import DydxClient, StarkKeyPair
from provisioner.clients.ratelimit import RateLimiter
from provisioner.clients.retry import RetryPolicy
from provisioner.manifest.model import RemoteSigner
from provisioner.observe import Derive, observe
from provisioner.plan.model import StepKind
from provisioner.plan.planner import PlanOptions, plan_account
from provisioner.redact import Redactor
from provisioner.secrets import SecretResolver
from provisioner.signers.base import EthSigner
from provisioner.signers.local import LocalKeySigner

USDC = 10**6
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def adopted(deposited: int = 3 * USDC, *, registered: bool = True, deposit: str = "4.5") -> World:
    """Onboarded at dYdX (position 7) outside this tool: Vault holds nothing for it yet."""
    w = world(deposit=deposit)
    w.vault.secrets.clear()
    w.chain.credited[(w.dydx.stark.public_key, 7)] = deposited
    w.chain.registered = {w.dydx.stark.public_key: w.spec.address} if registered else {}
    return w


class CountingDydx(FakeDydx):
    def __init__(self, base: FakeDydx) -> None:
        super().__init__(base.log, base.stark, base.default)
        self.users, self.keys = base.users, base.keys
        self.derivations = 0

    def derive_stark_key(
        self, signer: EthSigner, *, check_deterministic: bool = True
    ) -> StarkKeyPair:
        assert check_deterministic, "the first derivation always signs twice"
        self.derivations += 1
        return self.stark


def test_a_local_signer_derives_the_key_and_the_plan_sees_what_exists() -> None:
    w = adopted()
    facts = observe(w.conn, [w.spec]).account(w.spec.name)  # type: ignore[arg-type]
    assert facts.derived_stark_key is not None
    assert facts.derived_stark_key.public_key == w.dydx.stark.public_key_hex
    assert facts.derived_stark_key.position_id == 7
    assert not facts.stark_key_unknown
    assert facts.deposited == 3 * USDC
    assert facts.stark_key_owner == w.spec.address
    plan = plan_account(w.spec, facts)
    by = {s.kind: s for s in plan.steps}
    assert set(by) == {StepKind.STARK_KEY, StepKind.APPROVE, StepKind.DEPOSIT, StepKind.API_KEY}
    assert by[StepKind.DEPOSIT].summary == "deposit 1.5 USDC"
    assert by[StepKind.DEPOSIT].reason == "deposited 3 of 4.5 USDC"
    assert by[StepKind.APPROVE].summary == "approve 1.5 USDC for the exchange"
    assert "the same key dYdX has" in by[StepKind.STARK_KEY].reason
    assert w.vault.secrets == {} and w.events == []  # nothing stored, nothing sent


def test_an_account_funded_past_its_target_plans_no_allowance_and_no_deposit() -> None:
    w = adopted(10_010_000, deposit="10")
    facts = observe(w.conn, [w.spec]).account(w.spec.name)  # type: ignore[arg-type]
    plan = plan_account(w.spec, facts)
    assert [s.kind for s in plan.steps] == [StepKind.STARK_KEY, StepKind.API_KEY]
    assert any("10.01 already deposited" in n.message for n in plan.notes)


def test_derived_once_per_run_the_second_look_takes_it_over() -> None:
    w = adopted()
    counting = CountingDydx(w.dydx)
    w.conn.dydx = counting
    first = observe(w.conn, [w.spec])  # type: ignore[arg-type]
    again = observe(w.conn, [w.spec], known=first)  # type: ignore[arg-type]
    assert counting.derivations == 1
    assert again == first


def test_a_fresh_account_is_not_derived_nothing_can_exist_for_it() -> None:
    w = world()
    w.vault.secrets.clear()
    w.dydx.users.clear()
    counting = CountingDydx(w.dydx)
    w.conn.dydx = counting
    facts = observe(w.conn, [w.spec]).account(w.spec.name)  # type: ignore[arg-type]
    assert counting.derivations == 0
    assert facts.derived_stark_key is None and not facts.stark_key_unknown


def test_off_derives_nothing_and_resolves_no_signer() -> None:
    w = adopted()
    w.conn.resolver = SecretResolver(w.conn.redactor, {})  # resolving the key would fail
    facts = observe(w.conn, [w.spec], derive=Derive.OFF).account(w.spec.name)  # type: ignore[arg-type]
    assert facts.signer_error is None and facts.derived_stark_key is None
    assert facts.stark_key_unknown
    plan = plan_account(w.spec, facts)
    by = {s.kind: s for s in plan.steps}
    # the worst case: nothing deposited, the full target, for the ceilings
    assert by[StepKind.DEPOSIT].summary == (
        "deposit up to 4.5 USDC: known once the STARK key is derived"
    )
    assert by[StepKind.DEPOSIT].params.amount_base_units == 4_500_000  # type: ignore[union-attr]
    assert by[StepKind.REGISTER].summary.endswith("known once the STARK key is derived")
    assert by[StepKind.APPROVE].summary.endswith("known once the STARK key is derived")


def test_a_remote_signer_derives_only_when_asked() -> None:
    w = adopted()
    # nothing listens there: asking the signer would show as a signer error
    spec = replace(w.spec, signer=RemoteSigner(url="http://127.0.0.1:9", timeout_seconds=1))
    facts = observe(w.conn, [spec]).account(spec.name)  # type: ignore[arg-type]
    assert facts.derived_stark_key is None and facts.signer_error is None
    assert facts.stark_key_unknown
    by = {s.kind: s for s in plan_account(spec, facts).steps}
    assert "plan --derive asks the remote signer for it" in by[StepKind.DEPOSIT].reason
    asked = observe(w.conn, [spec], derive=Derive.ALL).account(spec.name)  # type: ignore[arg-type]
    assert asked.signer_error is not None and asked.derived_stark_key is None


def test_a_key_dydx_does_not_have_blocks_the_account() -> None:
    w = adopted()
    w.dydx.stark = StarkKeyPair.from_private_key(0x7654321)  # what the signer derives
    facts = observe(w.conn, [w.spec]).account(w.spec.name)  # type: ignore[arg-type]
    plan = plan_account(w.spec, facts)
    stark = plan.steps[0]
    assert stark.kind is StepKind.STARK_KEY and "conflict: the signer derives" in (
        stark.blocked or ""
    )
    # nothing is paid on a key dYdX does not have (the default API key does not depend on it)
    assert all(s.blocked for s in plan.steps if s.kind is not StepKind.API_KEY)


class _Malleable(LocalKeySigner):
    """Valid signatures that differ call to call, as anti-klepto wallets and MPC signers give."""

    calls = 0

    def sign_typed_data(self, typed_data: dict[str, Any]) -> str:
        signature = bytes.fromhex(super().sign_typed_data(typed_data)[2:])
        _Malleable.calls += 1
        if _Malleable.calls % 2 == 0:  # the (r, n - s) twin: same signer, other bytes
            s = SECP256K1_N - int.from_bytes(signature[32:64], "big")
            signature = signature[:32] + s.to_bytes(32, "big") + bytes([55 - signature[64]])
        return "0x" + signature.hex()


class RealDerivation(FakeDydx):
    """The fake's users and keys, with the real client's derivation (signs twice, compares)."""

    def __init__(self, base: FakeDydx) -> None:
        super().__init__(base.log, base.stark, base.default)
        self.users, self.keys = base.users, base.keys
        self.real = DydxClient(
            "http://127.0.0.1:9",
            11155111,
            redactor=Redactor(),
            retry=RetryPolicy(max_attempts=1),
            limiter=RateLimiter(),
        )

    def derive_stark_key(
        self, signer: EthSigner, *, check_deterministic: bool = True
    ) -> StarkKeyPair:
        return self.real.derive_stark_key(signer, check_deterministic=check_deterministic)


def test_a_signer_whose_two_signatures_differ_is_refused_before_any_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = adopted()
    w.conn.dydx = RealDerivation(w.dydx)
    monkeypatch.setattr(derivation, "make_signer", lambda *_a, **_k: _Malleable(w.private_key))
    facts = observe(w.conn, [w.spec]).account(w.spec.name)  # type: ignore[arg-type]
    assert "two different signatures" in (facts.signer_error or "")
    assert facts.derived_stark_key is None
    assert all(s.blocked for s in plan_account(w.spec, facts).steps)


class RecoveryCountingDydx(FakeDydx):
    """Counts the onboarding signatures asked to recover the default key's id."""

    def __init__(self, base: FakeDydx) -> None:
        super().__init__(base.log, base.stark, base.default)
        self.users, self.keys = base.users, base.keys
        self.recoveries = 0

    def recover_default_credentials(self, signer: EthSigner) -> Any:
        self.recoveries += 1
        return super().recover_default_credentials(signer)


def test_a_remote_signer_is_asked_for_the_default_key_only_with_derive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review finding (session 4): a key at dYdX that no destination holds made every plan ask
    the signer for the onboarding signature, so a nightly drift plan of a custody signer
    asked a person to approve it, though plan asks remote signers only with --derive."""
    w = world(deposit="0")
    counting = RecoveryCountingDydx(w.dydx)
    w.conn.dydx = counting
    counting.keys[w.spec.address].add("key-left-by-hand")  # not in the manifest: drift
    spec = replace(w.spec, signer=RemoteSigner(url="http://127.0.0.1:9", timeout_seconds=1))
    monkeypatch.setattr(derivation, "make_signer", lambda *_a, **_k: object())

    def has_work(*_a: Any) -> bool:
        return True

    quiet = observe(w.conn, [spec], check_signer=has_work).account(spec.name)  # type: ignore[arg-type]
    assert counting.recoveries == 0 and quiet.default_key_id is None
    pruned = plan_account(spec, quiet, PlanOptions(prune_api_keys=True))
    [delete] = [s for s in pruned.steps if s.kind is StepKind.DELETE_API_KEY]
    assert delete.blocked and "--derive" in delete.blocked  # never the default by mistake
    asked = observe(w.conn, [spec], check_signer=has_work, derive=Derive.ALL).account(spec.name)  # type: ignore[arg-type]
    assert counting.recoveries == 1 and asked.default_key_id == "key-default"
