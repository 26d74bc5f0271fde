"""Planning for accounts that exist already (onboarded in the web app): what the STARK key
derived in memory while observing says, and the words for what is not known without it.

Pure functions of the account's spec and facts, used by the planner.
"""

from __future__ import annotations

from provisioner.facts import AccountFacts
from provisioner.manifest.model import AccountSpec, RemoteSigner

KNOWN_ONCE = "known once the STARK key is derived"


def dydx_key_conflict(spec: AccountSpec, facts: AccountFacts, import_hint: str) -> str | None:
    """The block when the key the signer derives is not the one dYdX's account has."""
    derived = facts.derived_stark_key
    if derived is None or derived.dydx_stark_key is None:
        return None
    if int(derived.dydx_stark_key, 16) == int(derived.public_key, 16):
        return None
    return (
        f"conflict: the signer derives STARK key {derived.public_key}, dYdX's account for "
        f"{spec.address} has {derived.dydx_stark_key}; import the web app's key pair instead: "
        f"{import_hint}"
    )


def unknown_why(spec: AccountSpec, facts: AccountFacts, import_hint: str) -> str:
    """Why the STARK key behind registration and deposits is not known, and the way out."""
    if spec.signer is None:
        how = f"import it from the web app: {import_hint}"
    elif facts.signer_error:
        how = "the signer cannot be used"
    elif facts.derived_stark_key is not None:
        how = "dYdX did not give the account's position"
    elif isinstance(spec.signer, RemoteSigner):
        how = "plan --derive asks the remote signer for it"
    else:
        how = "this plan derives no key: an untrusted plan resolves no signer"
    return f"the STARK key is not in Vault and was not derived ({how})"
