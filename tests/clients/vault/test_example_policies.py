"""The three Vault policies of examples/vault/ (issue 16), parsed and judged by a real OpenBao:
the pull-request plan reads metadata only, the drift check reads, only apply writes."""

from __future__ import annotations

import uuid
from pathlib import Path

import hvac
import pytest

pytestmark = pytest.mark.sandbox

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "vault"
STARK = "kv/{kind}/dydx/mainnet/mm-eu-1/stark"
API = "kv/{kind}/dydx/mainnet/mm-eu-1/api/default"
JOURNAL = "kv/{kind}/dydx-provisioner/mainnet/journal/mm-eu-1"
LOCK = "kv/{kind}/dydx-provisioner/mainnet/locks/accounts/mm-eu-1"
SIGNER = "kv/{kind}/signers/mm-eu-1"


def _capabilities(root: hvac.Client, policy_file: str) -> dict[str, set[str]]:
    name = f"example-{policy_file.split('.')[0]}-{uuid.uuid4().hex[:6]}"
    root.sys.create_or_update_policy(name=name, policy=(EXAMPLES / policy_file).read_text())
    token = root.auth.token.create(policies=[name], ttl="5m")["auth"]["client_token"]
    paths = [
        template.format(kind=kind)
        for template in (STARK, API, JOURNAL, LOCK, SIGNER)
        for kind in ("data", "metadata")
    ]
    answer = root.adapter.post("/v1/sys/capabilities", json={"token": token, "paths": paths})
    data = answer.get("data", answer)
    return {p: set(data[p]) - {"deny"} for p in paths}


def test_the_pull_request_plan_reads_metadata_and_nothing_else(root: hvac.Client) -> None:
    caps = _capabilities(root, "pr-plan.hcl")
    for template in (STARK, API):
        assert caps[template.format(kind="metadata")] == {"read", "list"}
        assert caps[template.format(kind="data")] == set()
    assert caps[JOURNAL.format(kind="metadata")] == {"list"}
    for path in (
        JOURNAL.format(kind="data"),
        LOCK.format(kind="data"),
        SIGNER.format(kind="data"),
        SIGNER.format(kind="metadata"),
    ):
        assert caps[path] == set(), path


def test_the_drift_check_reads_destinations_and_journal_but_no_signer(root: hvac.Client) -> None:
    caps = _capabilities(root, "drift.hcl")
    for template in (STARK, API, JOURNAL):
        assert caps[template.format(kind="data")] == {"read"}
    assert caps[SIGNER.format(kind="data")] == set()
    assert caps[LOCK.format(kind="data")] == set()
    assert not any(c & {"create", "update", "delete", "patch"} for c in caps.values())


def test_apply_writes_destinations_locks_and_journal_and_reads_signers(root: hvac.Client) -> None:
    caps = _capabilities(root, "apply.hcl")
    for template in (STARK, API, JOURNAL, LOCK):
        assert {"create", "update", "read"} <= caps[template.format(kind="data")]
    assert {"create", "update"} <= caps[STARK.format(kind="metadata")]
    assert "delete" in caps[JOURNAL.format(kind="metadata")]
    assert caps[SIGNER.format(kind="data")] == {"read"}
    assert not caps[SIGNER.format(kind="metadata")] & {"create", "update", "delete"}
