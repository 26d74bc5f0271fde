"""The keys and ids an account has at dYdX; secrets are kept out of ``repr``."""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioner.clients import stark_curve


@dataclass(frozen=True)
class StarkKeyPair:
    private_key: int = field(repr=False)
    public_key: int
    public_key_y: int

    @classmethod
    def from_private_key(cls, private_key: int) -> StarkKeyPair:
        x, y = stark_curve.public_key(private_key)
        return cls(private_key=private_key, public_key=x, public_key_y=y)

    def __repr__(self) -> str:
        return (
            f"StarkKeyPair(public_key={self.public_key_hex}, public_key_y={self.public_key_y_hex})"
        )

    @property
    def private_key_hex(self) -> str:
        return hex(self.private_key)

    @property
    def public_key_hex(self) -> str:
        return hex(self.public_key)

    @property
    def public_key_y_hex(self) -> str:
        return hex(self.public_key_y)


@dataclass(frozen=True)
class ApiCredentials:
    key: str
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)

    def as_dydx3(self) -> dict[str, str]:
        """The ``api_key_credentials`` dict dydx3.Client takes."""
        return {"key": self.key, "secret": self.secret, "passphrase": self.passphrase}


@dataclass(frozen=True)
class OnboardedAccount:
    account_id: str
    position_id: int
    stark_key: int
