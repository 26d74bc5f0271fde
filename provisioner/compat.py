"""The one place that makes dydx-v3-python 2.1.0 importable on Python 3.11+.

dydx-v3-python 2.1.0 pins web3 5.x, whose eth-abi 2.x pins parsimonious 0.8.1,
and parsimonious 0.8.1 does ``from inspect import getargspec``. That name was
removed in Python 3.11, so ``import dydx3`` (or ``import web3``) fails there.
pip cannot install parsimonious 0.9 beside eth-abi 2.x without a resolver
conflict, so we restore the name as an alias of ``getfullargspec`` (its result
starts with the same four fields parsimonious reads: args, varargs, varkw,
defaults).

``provisioner/__init__.py`` applies this, so any ``import provisioner...``
makes ``import dydx3`` and ``import web3`` safe afterwards. Tests run with
``-p no:pytest_ethereum`` because web3 registers a pytest plugin that would
import parsimonious before any of our code runs.
"""

from __future__ import annotations

import inspect


def restore_getargspec() -> None:
    if not hasattr(inspect, "getargspec"):
        inspect.getargspec = inspect.getfullargspec  # type: ignore[attr-defined]


restore_getargspec()
