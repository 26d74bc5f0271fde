"""Review finding (session 4): ``apply PLAN`` plans again at a time the plan file gives.

run.py takes ``saved.observed_at`` as "now" for the fresh plan, and the fingerprint leaves
it out. A rotation is due, and a replaced key's overlap has passed, by that time: a plan file
whose observed_at was moved into the future (edited, or made on a host with a wrong clock)
makes apply rotate keys early and delete the previous ones at once, inside the overlap the
running bots rely on; check_saved cannot see it, since the steps it compares are made at the
same forged time. A saved plan from the future should be refused before anything is written.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from support.apply_fakes import world

from provisioner.apply.run import ApplyRequest, run_apply
from provisioner.errors import ProvisionerError
from provisioner.plan.planner import PlanOptions
from provisioner.session import Session, look

YEAR = 365 * 86400.0


def never(_plan: object) -> bool:
    raise AssertionError("nobody is asked with a saved plan")


@pytest.mark.xfail(
    strict=True,
    reason="review: a saved plan's observed_at in the future is taken as the time to plan at "
    "(rotations due, overlaps passed) and is not refused",
)
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
