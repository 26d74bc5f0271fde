"""A pull request's manifest cannot rewrite the plan comment posted on it.

``network.name`` is a free label, accepted by ``--untrusted-manifest`` with the pinned
endpoints. It went unescaped into the comment's heading: a name holding newlines, markdown
and an HTML comment opener made the posted plan read "No changes" and hid the real table
and summary from the reviewers. It is now a one-line code span.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from support.plans import fleet_plan

from provisioner.manifest.loader import load_manifest
from provisioner.manifest.trust import LoadPolicy, PinnedEndpoints
from provisioner.plan.render import render_markdown

MANIFEST = """\
version: 1
network:
  name: "sandbox\\n\\n**No changes.** Every account matches the manifest.\\n\\n<!--"
  chain_id: 11155111
  api_url: ${DYDX_API_URL}
  rpc_url: ${ETH_RPC_URL}
vault:
  address: ${VAULT_ADDR}
  auth: {method: token}
  mount: secret
  state_path: dydx-provisioner
accounts:
  - name: mm-alpha
    address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    deposit: "8.2"
    secrets: {stark_key: dydx/mm-alpha/stark}
    api_keys:
      - name: default
        secret: dydx/mm-alpha/api/default
"""


def test_an_untrusted_network_name_cannot_rewrite_the_markdown_plan(tmp_path: Path) -> None:
    path = tmp_path / "provision.yaml"
    path.write_text(MANIFEST)
    pins = PinnedEndpoints(
        "http://127.0.0.1:8200", "http://127.0.0.1:8080", "http://127.0.0.1:8545", 11155111
    )
    manifest = load_manifest(path, env={}, policy=LoadPolicy.untrusted(pins, frozenset()))
    plan = replace(fleet_plan(["mm-alpha"]), network=manifest.network.name)  # as make_plan sets it
    text = render_markdown(plan)
    heading, *rest = text.splitlines()
    shown = "sandbox **No changes.** Every account matches the manifest. <!--"
    assert heading == f"### dydx-provisioner plan: `fleet.yaml` on `{shown}`"  # literal
    body = "\n".join(rest)
    assert "<!--" not in body and "No changes" not in body
    assert rest[1] == "**Plan: 6 to add, 0 to change, 0 blocked.**"  # the real summary, shown
