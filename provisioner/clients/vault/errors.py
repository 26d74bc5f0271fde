"""What the Vault client raises, and the one place hvac's and the transport's errors become ours.

Every message is one line naming the address and what failed, never a token or a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import hvac.exceptions as hvac_exc

from provisioner.clients.transport import TransportError
from provisioner.errors import ProvisionerError
from provisioner.redact import Redactor


class VaultError(ProvisionerError):
    """Vault refused or could not be reached. The message is one line with no secret in it."""


class CasConflict(VaultError):
    """The path changed since it was read: its version is not the one the write expected."""


class ForeignSecret(VaultError):
    """The path holds data this tool did not write for this account; it is never overwritten."""


class NotFound(Exception):
    """404 from a read: ``body`` may still carry the metadata of a deleted version."""

    def __init__(self, body: Any) -> None:
        self.body = body


class CasMismatch(Exception):
    pass


def cas_conflict(address: str, where: str, expected: int, actual: int | None) -> CasConflict:
    now = f", it is at version {actual}" if actual is not None else ""
    return CasConflict(
        f"Vault at {address}: {where} changed since it was read "
        f"(expected version {expected}{now}); nothing was written"
    )


@contextmanager
def translated(
    address: str, action: str, redactor: Redactor, timeout: float, *, login: bool = False
) -> Iterator[None]:
    """Turn what hvac and the transport raise into one-line VaultErrors naming the address."""
    try:
        yield
    except hvac_exc.InvalidPath as exc:
        if login:
            raise VaultError(f"Vault at {address}: {action} failed: no such path") from None
        raise NotFound(exc.json) from None
    except hvac_exc.InvalidRequest as exc:
        reason = _reason(exc, redactor)
        if "check-and-set" in reason:
            raise CasMismatch() from None
        raise VaultError(f"Vault at {address}: {action} failed: {reason}") from None
    except (hvac_exc.Forbidden, hvac_exc.Unauthorized) as exc:
        verb = "was rejected" if login else "failed"
        raise VaultError(f"Vault at {address}: {action} {verb}: {_reason(exc, redactor)}") from None
    except hvac_exc.VaultError as exc:
        raise VaultError(f"Vault at {address}: {action} failed: {_reason(exc, redactor)}") from None
    except TransportError as exc:
        if exc.timeout and exc.maybe_sent:
            raise VaultError(
                f"Vault at {address}: {action}: no answer within {timeout:g}s"
            ) from None
        raise VaultError(f"Vault at {address} is unreachable ({action}: {exc.reason})") from None


def _reason(exc: hvac_exc.VaultError, redactor: Redactor) -> str:
    errors = exc.errors if isinstance(exc.errors, list) else [exc.errors] if exc.errors else []
    text = "; ".join(str(e) for e in errors) or type(exc).__name__
    text = re.sub(r"\d+ errors? occurred:", " ", text).replace("*", " ")
    return redactor.redact(" ".join(text.split())) or type(exc).__name__
