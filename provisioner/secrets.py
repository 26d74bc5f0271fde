"""Secret references (``vault``, ``env``, ``file``) to values, each registered with the Redactor on the way in.

This is where secrecy is declared: a value leaves ``resolve`` only after the
Redactor knows it, so every later output can mask it. Results are cached for
the run, so nothing is fetched twice, except where a source changes under a
running process (a CI job's or a pod's login token): ``resolve(ref, fresh=True)``.

A ``file`` reference is read only if, symlinks resolved, it is still inside the
manifest's directory; for an untrusted manifest ``env`` references read only the
variables it was allowed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.errors import ProvisionerError
from provisioner.manifest.model import SecretRef
from provisioner.manifest.paths import is_inside
from provisioner.redact import Redactor

if TYPE_CHECKING:
    from provisioner.clients.vault import VaultClient


class SecretError(ProvisionerError):
    """A reference could not be resolved. The message names the reference, never a value."""


class SecretResolver:
    def __init__(
        self,
        redactor: Redactor,
        env: Mapping[str, str] | None = None,
        *,
        allowed_env: frozenset[str] | None = None,
    ) -> None:
        """``allowed_env``: the only variables ``env`` references may read (None: any)."""
        self._redactor = redactor
        self._env = os.environ if env is None else env
        self._allowed_env = allowed_env
        self._vault: VaultClient | None = None
        self._values: dict[SecretRef, str] = {}
        self._vault_data: dict[str, Mapping[str, str]] = {}
        # One lock per source (a Vault path, a file, a variable), held while resolving it: two
        # threads asking for one secret fetch it once, and threads asking for different ones
        # (every account's signer key, while a run looks) fetch them side by side.
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.RLock] = {}

    def attach_vault(self, client: VaultClient) -> None:
        """Enable ``vault`` references; called once the VaultClient has logged in."""
        self._vault = client

    def _lock_for(self, ref: SecretRef) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault((ref.kind, ref.target), threading.RLock())

    def resolve(self, ref: SecretRef, *, fresh: bool = False) -> str:
        """The value, registered with the redactor; ``fresh``: read the source again."""
        with self._lock_for(ref):
            cached = None if fresh else self._values.get(ref)
            if cached is not None:
                return cached
            if fresh and ref.kind == "vault":
                self._vault_data.pop(ref.target, None)
            if ref.kind == "env":
                value = self._from_env(ref)
            elif ref.kind == "file":
                value = self._from_file(ref)
            elif ref.kind == "vault":
                value = self._from_vault(ref)
            else:
                raise SecretError(f"{ref.describe()}: unknown reference kind {ref.kind!r}")
            self._redactor.register(value)
            self._values[ref] = value
            return value

    def _from_env(self, ref: SecretRef) -> str:
        if self._allowed_env is not None and ref.target not in self._allowed_env:
            raise SecretError(
                f"{ref.describe()}: an untrusted manifest may not read {ref.target}; "
                f"expected --allow-env {ref.target}"
            )
        value = self._env.get(ref.target)
        if value is None:
            raise SecretError(f"{ref.describe()}: environment variable {ref.target} is not set")
        if not value.strip():
            raise SecretError(f"{ref.describe()}: environment variable {ref.target} is empty")
        return value

    def _from_file(self, ref: SecretRef) -> str:
        path = Path(ref.target)
        if ref.root is not None and not is_inside(ref.target, ref.root):
            raise SecretError(
                f"{ref.describe()}: leads out of the manifest's directory (a symlink); not read"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SecretError(f"{ref.describe()}: {path} is not UTF-8 text") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SecretError(f"{ref.describe()}: cannot read {path} ({reason})") from None
        value = text.rstrip("\r\n")
        if not value.strip():
            raise SecretError(f"{ref.describe()}: {path} is empty")
        return value

    def _from_vault(self, ref: SecretRef) -> str:
        if self._vault is None:
            raise SecretError(
                f"{ref.describe()}: Vault references cannot be resolved before Vault login"
            )
        if not ref.field:
            raise SecretError(f"{ref.describe()}: a Vault reference needs a field (path#field)")
        data = self._vault_data.get(ref.target)
        if data is None:
            try:
                record = self._vault.read(ref.target)
            except ProvisionerError as exc:
                raise SecretError(f"{ref.describe()}: {exc}") from None
            if not record.entry.exists:
                raise SecretError(f"{ref.describe()}: no secret at {ref.target}")
            data = record.data
            self._vault_data[ref.target] = data
        value = data.get(ref.field)
        if value is None:
            present = ", ".join(sorted(data)) or "none"
            raise SecretError(f"{ref.describe()}: no field {ref.field!r} (fields: {present})")
        if not value.strip():
            raise SecretError(f"{ref.describe()}: field {ref.field!r} is empty")
        return value
