"""SIGTERM / SIGINT during apply: the first drains, a second aborts at once (issue #14)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from provisioner.apply.signals import Drain, Interrupted


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
