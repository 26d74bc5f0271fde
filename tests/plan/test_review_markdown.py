"""A pull request's manifest cannot rewrite the plan comment posted on it.

``network.name`` is a free label, accepted by ``--untrusted-manifest`` with the pinned
endpoints. It went unescaped into the comment's heading: a name holding newlines, markdown
and an HTML comment opener made the posted plan read "No changes" and hid the real table
and summary from the reviewers. Such a name is now a manifest error at its file:line (a line
break or control character), and the heading shows whatever name it is given as a one-line
code span (a plan file given to ``show`` carries its own).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from support.plans import fleet_plan

from provisioner.manifest.diagnostics import ManifestError
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
    with pytest.raises(ManifestError, match="holds a line break or control character"):
        load_manifest(path, env={}, policy=LoadPolicy.untrusted(pins, frozenset()))
    hostile = "sandbox\n\n**No changes.** Every account matches the manifest.\n\n<!--"
    plan = replace(fleet_plan(["mm-alpha"]), network=hostile)  # a plan file's own, for `show`
    text = render_markdown(plan)
    heading, *rest = text.splitlines()
    shown = "sandbox **No changes.** Every account matches the manifest. <!--"
    assert heading == f"### dydx-provisioner plan: `fleet.yaml` on `{shown}`"  # literal
    body = "\n".join(rest)
    assert "<!--" not in body and "No changes" not in body
    assert rest[1] == "**Plan: 6 to add, 0 to change, 0 blocked.**"  # the real summary, shown
