#!/usr/bin/env bash
# The README's main command: sandbox up, apply the example manifest, show a converged plan.
set -euo pipefail
cd "$(dirname "$0")/.."
P=.venv/bin/provision
$P sandbox up
eval "$($P sandbox env)"
$P sandbox status
