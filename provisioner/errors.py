"""Errors a user can act on. The CLI prints them as one line and exits 1, no traceback."""

from __future__ import annotations


class ProvisionerError(Exception):
    """A failure caused by input or by the environment, explained to a person."""

    exit_code = 1


class NotImplementedCommand(ProvisionerError):
    def __init__(self, command: str) -> None:
        super().__init__(f"'provision {command}' is not implemented yet")
