"""``vault:``: address, mount, state path, namespace and how to log in, as a ``VaultSpec``."""

from __future__ import annotations

from typing import Any

from provisioner.manifest.builder.reader import Reader
from provisioner.manifest.builder.references import secret_ref
from provisioner.manifest.model import SecretRef, VaultAuth, VaultSpec
from provisioner.manifest.positions import NodePath

K8S_SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DEFAULT_MOUNT = "secret"
DEFAULT_STATE_PATH = "dydx-provisioner"


def vault(r: Reader, root: dict[str, Any]) -> VaultSpec | None:
    block = r.get_container(root, "vault", ())
    if block is None:
        return None
    base: NodePath = ("vault",)
    address = r.get(block, "address", base)
    login = auth(r, block, base)
    mount = r.get(block, "mount", base)
    state = r.get(block, "state_path", base)
    namespace = r.get(block, "namespace", base)
    if address is None or login is None:
        return None
    if ("mount" in block and mount is None) or ("state_path" in block and state is None):
        return None
    return VaultSpec(
        address=address.value,
        auth=login,
        mount=mount.value if mount else DEFAULT_MOUNT,
        state_path=state.value if state else DEFAULT_STATE_PATH,
        namespace=namespace.value if namespace else None,
    )


def state_path(r: Reader, root: dict[str, Any]) -> str | None:
    """vault.state_path as written (or its default), even when other vault settings are wrong."""
    block = root.get("vault")
    if not isinstance(block, dict):
        return None
    if "state_path" not in block:
        return DEFAULT_STATE_PATH
    raw = r.get(block, "state_path", ("vault",))
    return raw.value if raw is not None and isinstance(raw.value, str) else None


def auth(r: Reader, block: dict[str, Any], base: NodePath) -> VaultAuth | None:
    if "auth" not in block:
        return VaultAuth("token", token=SecretRef("env", "VAULT_TOKEN"))
    login = r.get_container(block, "auth", base)
    path: NodePath = (*base, "auth")
    if login is None or (method := r.get(login, "method", path)) is None:
        return None
    kind = method.value

    def ref(key: str) -> SecretRef | None:
        raw = r.get_container(login, key, path)
        return secret_ref(r, raw, (*path, key), None) if raw is not None else None

    def text(key: str) -> str | None:
        raw = r.get(login, key, path)
        return raw.value if raw is not None and isinstance(raw.value, str) else None

    mount_path = text("mount_path") or (None if kind == "token" else kind)
    if kind == "token":
        token = ref("token") if "token" in login else SecretRef("env", "VAULT_TOKEN")
        return VaultAuth("token", token=token) if token else None
    if kind == "approle":
        role, secret_id = text("role_id"), ref("secret_id")
        if role is None or secret_id is None:
            return None
        return VaultAuth("approle", role=role, secret_id=secret_id, mount_path=mount_path)
    if kind in ("jwt", "kubernetes"):
        role = text("role")
        if "jwt" in login:
            jwt = ref("jwt")
        elif kind == "kubernetes":
            jwt = SecretRef("file", K8S_SERVICE_ACCOUNT_TOKEN)
        else:
            jwt = None
        if role is None or jwt is None:
            return None
        return VaultAuth(kind, role=role, jwt=jwt, mount_path=mount_path)
    return None
