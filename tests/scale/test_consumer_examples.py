"""examples/consumers/: how bots pick up a rotated key. Each reads the very destination the
k8s manifest writes, re-reads it on an interval, and restarts or reloads the bot; the
manifest's overlap is longer than that interval."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from provisioner.manifest.durations import parse_duration
from provisioner.manifest.loader import load_manifest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _quoter(tmp_path: Path) -> tuple[str, int]:
    """The mm-eu-1 quoter key's Vault path (with the KV mount) and its rotation_overlap."""
    (configmap,) = yaml.safe_load_all((EXAMPLES / "k8s" / "configmap.yaml").read_text())
    path = tmp_path / "provision.yaml"
    path.write_text(configmap["data"]["provision.yaml"])
    manifest = load_manifest(path, {"VAULT_ADDR": "https://vault:8200", "ETH_RPC_URL": "https://r"})
    account = manifest.account("mm-eu-1")
    (key,) = [k for k in account.api_keys if k.name == "quoter"]
    return f"{manifest.vault.mount}/{key.secret_path}", key.rotation_overlap


def test_vault_agent_rerenders_and_restarts_the_bot_within_the_overlap(tmp_path: Path) -> None:
    hcl = (EXAMPLES / "consumers" / "vault-agent.hcl").read_text()
    path, overlap = _quoter(tmp_path)
    mount, _, rest = path.partition("/")
    assert f'secret \\"{mount}/data/{rest}\\"' in hcl  # KV v2: the data/ path of that destination
    for field in ("key", "secret", "passphrase"):
        assert f".Data.data.{field}" in hcl
    interval = re.search(r'static_secret_render_interval\s*=\s*"(\w+)"', hcl)
    assert interval is not None and parse_duration(interval.group(1)) < overlap
    assert re.search(r"exec\s*{[^}]*restart_on_secret_changes\s*=\s*\"always\"", hcl)


def test_external_secrets_refresh_and_reloader_roll_the_bot_within_the_overlap(
    tmp_path: Path,
) -> None:
    docs: list[dict[str, Any]] = list(
        yaml.safe_load_all((EXAMPLES / "consumers" / "external-secret.yaml").read_text())
    )
    by_kind = {d["kind"]: d for d in docs}
    store, external, deployment = (
        by_kind["SecretStore"],
        by_kind["ExternalSecret"],
        by_kind["Deployment"],
    )
    path, overlap = _quoter(tmp_path)
    mount, _, rest = path.partition("/")
    assert store["spec"]["provider"]["vault"]["path"] == mount
    assert store["spec"]["provider"]["vault"]["version"] == "v2"
    assert {d["remoteRef"]["key"] for d in external["spec"]["data"]} == {rest}
    assert {d["remoteRef"]["property"] for d in external["spec"]["data"]} == {
        "key",
        "secret",
        "passphrase",
    }
    assert parse_duration(external["spec"]["refreshInterval"]) < overlap
    target = external["spec"]["target"]["name"]
    annotations = deployment["metadata"]["annotations"]
    assert annotations["secret.reloader.stakater.com/reload"] == target
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": target}}]
