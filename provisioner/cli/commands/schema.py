"""`provision schema`: print the manifest's JSON Schema (for editors and CI)."""

from __future__ import annotations

import argparse
import sys

from provisioner.manifest.schema import schema_text


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_text())
    return 0
