"""Named kill points for crash tests (a test hook, like etcd's gofail).

``failpoint(name)`` does nothing unless the environment variable
``PROVISION_FAILPOINT`` names it (``PROVISION_FAILPOINT=after_broadcast:deposit``, or
several, comma-separated); then the process kills itself with SIGKILL on the spot: no
``finally``, no lock release, no flush, exactly like a power cut or ``kill -9``.
``NAME=SIGTERM`` (or ``=SIGINT``) sends that signal instead and goes on, as a CI cancel
would arrive at that moment; ``NAME=SIGSTOP`` pauses the process there until a SIGCONT.
``tests/apply/test_crash_matrix.py`` runs apply once per point, then again without
it, and checks that the second run converges without paying twice or losing a key.

Every point is declared in ``POINTS``; naming an unknown one is a programming error.
Never set the variable outside tests.
"""

from __future__ import annotations

import os
import signal

from provisioner.plan.model import StepKind

ENV = "PROVISION_FAILPOINT"

_TX_INTENTS = ("register", "approve", "deposit")
_WRITES = ("stark_key", "stark_account", "default_api_key", "api_key", "rotated_api_key")
_STEP_KINDS = tuple(kind.value for kind in StepKind)

# name -> what the world looks like when the process dies there
POINTS: dict[str, str] = {
    "after_lock": "the run lock is taken, nothing else done",
    "after_account_locks": "the run and account locks are taken, nothing else done",
    "after_settle": "the journal is settled for the account, no step run yet",
    "after_derive:stark_key": "STARK key derived in memory, nothing stored",
    "after_onboard": "POST /v3/onboarding succeeded, nothing from it stored",
    "after_intent:api_key": "API key intent journaled (keys listed before), POST not sent",
    "after_create:api_key": "POST /v3/api-keys succeeded, the secret only in memory",
    "after_intent_update:api_key": "the created key id recorded in the intent, secret not stored",
    "after_intent:rotate_api_key": "rotation intent journaled (keys listed before), POST not sent",
    "after_create:rotate_api_key": "the new key created at dYdX, its secret only in memory, the old key stored",
    "after_intent_update:rotate_api_key": "the new key's id recorded in the intent, secret not stored",
    "after_metadata:rotate_api_key": "custom_metadata names the new key and what it replaces; the data still holds the old key",
    "before_retire:api_key": "the replaced key checked and about to be deleted at dYdX",
    "settle:after_orphan_delete": "an orphaned API key deleted at dYdX, intent not yet forgotten",
    "settle:after_rebroadcast": "a journaled transaction rebroadcast, receipt not seen",
    "settle:before_forget": "a journaled transaction settled, its entry not yet forgotten",
    **{f"before_vault_write:{w}": f"about to write the {w} secret" for w in _WRITES},
    **{f"after_vault_write:{w}": f"the {w} secret written" for w in _WRITES},
    **{f"after_sign:{i}": f"{i} transaction signed, not journaled" for i in _TX_INTENTS},
    **{
        f"after_journal_record:{i}": f"{i} transaction journaled, not broadcast"
        for i in _TX_INTENTS
    },
    **{f"after_broadcast:{i}": f"{i} transaction broadcast, receipt not seen" for i in _TX_INTENTS},
    **{
        f"after_remote_send:{i}": f"a remote signer broadcast the {i} transaction, its hash not journaled"
        for i in _TX_INTENTS
    },
    **{
        f"after_receipt:{i}": f"{i} transaction mined, journal entry not forgotten"
        for i in _TX_INTENTS
    },
    **{f"after_step:{k}": f"the {k} step done, the next not started" for k in _STEP_KINDS},
}


_SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
_SIGNALS["SIGSTOP"] = signal.SIGSTOP


def active() -> dict[str, signal.Signals]:
    """The points named in the environment, each with the signal it sends (read on every call,
    so tests can set it late)."""
    armed = {}
    for item in os.environ.get(ENV, "").split(","):
        name, _, sig = item.strip().partition("=")
        if name:
            armed[name] = _SIGNALS[sig or "SIGKILL"]
    return armed


def failpoint(name: str) -> None:
    """Die by SIGKILL here (or send the signal named) if ``PROVISION_FAILPOINT`` names this
    point; otherwise nothing."""
    if name not in POINTS:
        raise ValueError(f"unknown failpoint {name!r}: declare it in provisioner.failpoints.POINTS")
    sig = active().get(name)
    if sig is not None:
        os.kill(os.getpid(), sig)
