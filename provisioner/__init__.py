"""dydx-provisioner: declarative onboarding of market makers onto dYdX v3."""

from provisioner import compat as _compat  # noqa: F401  (must run before dydx3/web3 import)

__version__ = "0.1.0"
