"""Review finding (session 4): ``apply PLAN`` plans again at a time the plan file gives.

run.py takes ``saved.observed_at`` as "now" for the fresh plan, and the fingerprint leaves
it out. A rotation is due, and a replaced key's overlap has passed, by that time: a plan file
whose observed_at was moved into the future (edited, or made on a host with a wrong clock)
makes apply rotate keys early and delete the previous ones at once, inside the overlap the
running bots rely on; check_saved cannot see it, since the steps it compares are made at the
same forged time. A saved plan from the future is refused before anything is written; a plan
saved with --derive is applied only with --derive given again (it makes the look ask remote
signers for signatures, before the plan can be compared).
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from support.apply_fakes import world

from provisioner.apply.run import ApplyRequest, run_apply
from provisioner.errors import ProvisionerError
from provisioner.plan.planner import PlanOptions
from provisioner.plan.saved import PlanMismatch, saved_options
from provisioner.session import Session, look

YEAR = 365 * 86400.0


def never(_plan: object) -> bool:
    raise AssertionError("nobody is asked with a saved plan")


def test_a_saved_plan_observed_in_the_future_is_refused_before_any_write() -> None:
    w = world(deposit="5")
    session = Session(w.conn.manifest, (w.spec,), w.conn, parallelism=2)  # type: ignore[arg-type]
    _, saved = look(session, PlanOptions())
    forged = replace(saved, observed_at=time.time() + YEAR)
    with pytest.raises(ProvisionerError, match="future"):
        run_apply(
            session,
            ApplyRequest(saved=forged, saved_name="p.plan"),
            report=lambda _e: None,
            approve=never,
        )
    assert w.chain.raw_sent == [] and w.vault.state == {}


def test_a_plan_saved_with_derive_needs_derive_given_again() -> None:
    w = world(deposit="5")
    session = Session(w.conn.manifest, (w.spec,), w.conn, parallelism=2)  # type: ignore[arg-type]
    _, saved = look(session, PlanOptions(derive=True))
    with pytest.raises(PlanMismatch, match="pass --derive to apply it"):
        saved_options(saved, PlanOptions(), "p.plan")
    assert saved_options(saved, PlanOptions(derive=True), "p.plan").derive
    assert not saved_options(replace(saved, options=PlanOptions()), PlanOptions(), "p.plan").derive
