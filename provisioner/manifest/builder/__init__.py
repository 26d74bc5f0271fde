"""From schema-checked data to typed desired state, with the checks a schema cannot make.

One module per part of the manifest: ``network``, ``vault`` (with its auth), ``accounts``
(with ``signers``), plus ``references`` (secret references and templates), ``checks``
(across entries) and ``reader`` (trusted values and reporting, which they all share).

Defaults: each of ``deposit``, ``allowance``, ``signer``, ``secrets.stark_key``
and ``api_keys`` in ``defaults:`` applies to every account that does not set
it. An account's own value wins; ``signer: null`` opts an account out of a
default signer (import-only); ``api_keys`` merge by name, the account's entry
replacing a default one of the same name.

Templates: in the strings of an account or of ``defaults`` (Vault paths,
references, keystore paths, remote URLs), ``{name}`` becomes the account name
and ``{NAME}`` the name upper-cased with ``-`` as ``_`` (for variable names).

References become ``SecretRef`` and are never read here. Values an earlier
phase found bad are skipped, so one mistake yields one message.
"""

from __future__ import annotations

from collections.abc import Mapping

from provisioner.manifest.builder.accounts import accounts
from provisioner.manifest.builder.network import network
from provisioner.manifest.builder.reader import Reader
from provisioner.manifest.builder.vault import state_path, vault
from provisioner.manifest.findings import Findings
from provisioner.manifest.model import Manifest


def build_manifest(
    data: object, findings: Findings, env: Mapping[str, str], base_dir: str
) -> Manifest | None:
    """The ``Manifest`` for checked ``data``, reporting to ``findings``; None if anything is wrong."""
    if not isinstance(data, dict):
        return None
    r = Reader(findings, env, base_dir)
    net = network(r, data)
    store = vault(r, data)
    max_deposit = None
    if (raw := r.get(data, "max_deposit", ())) is not None:
        max_deposit = r.amount(raw)
    specs = accounts(r, data, state_path(r, data))
    if net is None or store is None or specs is None or findings:
        return None
    return Manifest(
        path=findings.doc.file,
        version=1,
        network=net,
        vault=store,
        accounts=specs,
        max_deposit=max_deposit,
        extra={k: v for k, v in data.items() if k.startswith("x-")},
    )
