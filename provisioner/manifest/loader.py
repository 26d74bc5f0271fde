"""Load a manifest: YAML with positions -> interpolation -> inline-secret scan -> schema -> semantics.

Every phase reports all it finds; a later phase skips values an earlier one
already explained, so each mistake is reported once, at its own position.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from provisioner.errors import ProvisionerError
from provisioner.manifest.builder import build_manifest
from provisioner.manifest.diagnostics import Diagnostic, ManifestError
from provisioner.manifest.findings import Findings
from provisioner.manifest.inline_secrets import find_inline_secrets
from provisioner.manifest.interpolate import interpolate_tree
from provisioner.manifest.model import Location, Manifest
from provisioner.manifest.positions import NodePath, decode, parse_yaml
from provisioner.manifest.schema import schema_problems

__all__ = ["Diagnostic", "ManifestError", "load_manifest", "parse_manifest"]


def load_manifest(path: str | Path, env: Mapping[str, str] | None = None) -> Manifest:
    """Read, check and type the manifest at ``path``; ``${VAR}`` reads ``env`` (default: os.environ).

    Raises ``ManifestError`` with every problem found, or ``ProvisionerError``
    if the file cannot be read. Reads no secret and touches no network.
    """
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ProvisionerError(
            f"manifest {file} not found; expected a path given with -f/--file"
        ) from None
    except OSError as exc:
        raise ProvisionerError(f"cannot read manifest {file}: {exc.strerror or exc}") from None
    text = decode(raw, file)
    return parse_manifest(text, file, env, base_dir=os.path.dirname(os.path.abspath(file)))


def parse_manifest(
    text: str,
    file: str = "<manifest>",
    env: Mapping[str, str] | None = None,
    base_dir: str | None = None,
) -> Manifest:
    """Like ``load_manifest`` for text already in memory; ``{file: ...}`` paths resolve against ``base_dir``."""
    environment = os.environ if env is None else env
    directory = base_dir if base_dir is not None else os.getcwd()
    doc, yaml_problems = parse_yaml(text, file)
    findings = Findings(doc)
    for yaml_problem in yaml_problems:
        d = yaml_problem.diagnostic
        findings.report_at(d.location, d.message, d.expected, blocks=yaml_problem.blocks)
    if doc.root is None:
        findings.report_at(
            Location(file, 1, 1),
            "the manifest is empty",
            "a mapping with version, network, vault and accounts",
        )
        raise ManifestError(findings.diagnostics)

    def report_interpolation(path: NodePath, message: str, expected: str) -> None:
        findings.report(path, message, expected)

    doc.data = interpolate_tree(doc.data, environment, report_interpolation)

    for secret in find_inline_secrets(doc.data):
        if not findings.explained(secret.path):
            findings.report(secret.path, secret.message, secret.expected, at_key=secret.at_key)

    for problem in schema_problems(doc.data):
        if findings.explained(problem.path):
            continue
        findings.report(
            problem.path,
            problem.message,
            problem.expected,
            at_key=problem.at_key,
            blocking=problem.blocking,
        )

    manifest = build_manifest(doc.data, findings, environment, directory)
    if findings or manifest is None:
        if not findings:  # a builder gap; never leave the user without a reason
            findings.report_at(
                Location(file, 1, 1), "the manifest could not be understood", "a valid manifest"
            )
        raise ManifestError(findings.diagnostics)
    return manifest
