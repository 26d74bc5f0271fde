"""What the dYdX client raises. No message carries a secret: each is redacted where it is made."""

from __future__ import annotations

from provisioner.errors import ProvisionerError


class DydxError(ProvisionerError):
    """dYdX refused or could not be reached. ``status`` is None when no HTTP answer came back."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        msg: str | None = None,
        route: str = "",
        retry_after: float | None = None,
        retry_at: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.msg = msg
        self.route = route
        self.retry_after = retry_after  # seconds, from v3's Retry-After (sent in ms)
        self.retry_at = retry_at  # epoch seconds, from RateLimit-Reset (sent in epoch ms)
        self.ambiguous = ambiguous  # the request may have taken effect


class AlreadyOnboarded(DydxError):
    """POST /v3/onboarding answered 409: dYdX already has a user for the address."""


class NonDeterministicSigner(ProvisionerError):
    """The signer gave two different signatures for one message: keys derived from it are unrecoverable."""


class SignatureMismatch(ProvisionerError):
    """The signer's signature does not recover to its address for dydx3's digest."""
