"""SIGTERM / SIGINT during apply: the first drains, a second aborts at once (issue #14)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from provisioner.apply.signals import DRAIN_SECONDS, Drain, Interrupted


def test_a_real_sigterm_sets_the_drain_flag_and_the_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    told: list[str] = []
    drain = Drain(write=told.append)
    drain.begin_steps()
    with drain.installed():
        assert not drain.requested and drain.left() == float("inf")
        os.kill(os.getpid(), signal.SIGTERM)
        assert drain.wait(5)
    assert drain.requested and drain.signum == signal.SIGTERM and drain.exit_code == 143
    assert 0 < drain.left() <= drain.grace
    assert "SIGTERM: finishing the calls in flight, starting no new step" in told[0]
    assert signal.getsignal(signal.SIGTERM) is before


def test_ctrl_c_drains_first_and_a_second_one_aborts_at_once() -> None:
    aborted: list[int] = []
    told: list[str] = []
    drain = Drain(write=told.append, abort=aborted.append)
    drain.begin_steps()
    with drain.installed():
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: the handler takes it
        assert drain.requested and drain.exit_code == 130 and aborted == []
        os.kill(os.getpid(), signal.SIGINT)
    assert aborted == [130]
    assert "SIGINT again: aborting at once" in told[-1]
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)  # the default handler is back


def test_before_any_step_a_signal_stops_the_run_where_it_is() -> None:
    drain = Drain(write=lambda _t: None)
    with drain.installed(), pytest.raises(Interrupted) as stopped:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted long before
    assert stopped.value.exit_code == 143 and drain.requested
    assert "nothing was done" in str(stopped.value)


def test_sigterm_after_sigint_cuts_the_drain_short_instead_of_aborting() -> None:
    """GitHub Actions' cancel: SIGINT, then SIGTERM 7.5 s later, then a kill 2.5 s after."""
    aborted: list[int] = []
    clock = [100.0]
    drain = Drain(write=lambda _t: None, abort=aborted.append, monotonic=lambda: clock[0])
    drain.begin_steps()
    drain.request(signal.SIGINT)
    clock[0] += 7.5
    assert drain.left() == pytest.approx(12.5)
    drain.request(signal.SIGTERM)
    assert aborted == [] and drain.left() == pytest.approx(1.0)
    assert drain.exit_code == 130  # the first signal's


def test_the_examples_give_a_cancelled_apply_the_time_to_drain() -> None:
    """The Kubernetes Job waits longer than the drain before its SIGKILL; the GitHub Actions
    apply step is the process that gets the signals, and its timeout fires before the job's."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    job = yaml.safe_load((examples / "k8s" / "apply-job.yaml").read_text())
    pod = job["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= DRAIN_SECONDS + 10
    assert pod["containers"][0]["args"][0].startswith("exec provision apply")
    workflow = yaml.safe_load((examples / "ci" / "github-actions.yml").read_text())
    apply_job = workflow["jobs"]["apply"]
    [step] = [s for s in apply_job["steps"] if "provision apply" in s.get("run", "")]
    assert step["run"].startswith("exec provision apply")
    assert step["timeout-minutes"] < apply_job["timeout-minutes"]
